"""tunectl's configuration: its schema (`schema`), variables, sensitivity (`sensitive`),
and loading a directory into a `model.Config` (`load`). The language itself (parsing,
evaluation, functions) is `tunectl.hcl`.

This package reads files and the environment; it never touches the state or providers'
APIs (provider classes are consulted only for the attributes they accept).
"""
