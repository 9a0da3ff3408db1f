"""Providers: the interface (`base`) and the plugin registry (`registry`).

Provider implementations live in their own distributions under `providers/<name>/`.
"""
