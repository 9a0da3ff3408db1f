"""`python -m tunectl` runs the CLI."""

from tunectl.cli.main import run

run()
