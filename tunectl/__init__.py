"""tunectl: hyperparameter-tuning experiments as code.

The public Python API is `tunectl.report`, used by trial code; everything else is the CLI.
"""

# `tunectl.report` uses the standard library only, so importing it here keeps
# `import tunectl` inside a trial fast and free of tunectl's heavy dependencies.
from tunectl.report import report

__version__ = "0.1.0"

__all__ = ["report", "__version__"]
