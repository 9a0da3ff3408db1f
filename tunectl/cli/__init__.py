"""The command-line interface: one module per command group, kept thin.

Commands parse options, call an operation (`tunectl.operations`), and hand its results and
events to `tunectl.views`.
"""
