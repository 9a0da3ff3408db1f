"""The command-line interface: one module per command group, kept thin.

Commands parse options, call the workspace / engine, and hand results to `tunectl.views`.
"""
