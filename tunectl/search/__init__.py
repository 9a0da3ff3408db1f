"""Search spaces, algorithms and stop rules, as tunectl's configuration states them.

Pure: no Optuna import at module level. `tunectl.engine.search` bridges these to Optuna.
"""
