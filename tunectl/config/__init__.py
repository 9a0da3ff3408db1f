"""tunectl's configuration: what its blocks may hold (`schema`), variables, sensitivity
(`sensitive`), and loading a directory into a `model.Config` (`load`), which decodes
providers, backend and storage (`providers`), experiments (`experiment`), their
objective (`objective`), their trials (`trial`) and warm starts (`warm_start`). The
language itself (parsing, evaluation, functions, the generic attribute and block schema)
is `tunectl.hcl`.

This package reads files and the environment; it never touches the state or providers'
APIs (provider classes are consulted only for the attributes they accept and their
offline checks of them).
"""
