"""Search spaces, algorithms and stop rules, as tunectl's configuration states them.

Below `tunectl.config` and `tunectl.engine`, and pure: nothing here imports either, nor
Optuna at module level (a registry entry's builder imports it when called).
`tunectl.engine.search` bridges these to Optuna.

- `model`: the search-related types of an experiment (`ParamSpec`, `Algorithm`,
  `EarlyStopping`);
- `params`, `algorithms`, `pruners`: one registry per family, one entry per name holding
  its settings and checks, its documentation line and its Optuna builder;
- `pai`: PAI AutoML's early-stopping rule, on plain learning curves;
- `settings`: what a setting is, and the checks of settings;
- `space`: conditions (`when`), finite grids and the checks of a whole space;
- `stopping`: the stop rules and `compute_progress`, the one count of an experiment's trials.
"""
