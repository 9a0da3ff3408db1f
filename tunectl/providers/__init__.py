"""Providers, contract v2: the interface (`base`), task bodies and their quoting kinds
(`bodies`, with the shell rules in `shell`), and the plugin registry (`registry`).

Provider implementations live in their own distributions under `providers/<name>/`;
`docs/providers.md` is the page their authors follow. This package runs nothing itself
and imports nothing above `tunectl.hcl` and `tunectl.diags`.
"""
