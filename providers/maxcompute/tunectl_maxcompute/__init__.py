"""MaxCompute support for tunectl.

For now this holds only the emulator of the MaxCompute REST API (`tunectl_maxcompute.emulator`)
that pyodps talks to; the provider itself comes later.
"""
