"""`nni.utils.merge_parameter`, which NNI's examples use to lay parameters over argparse."""

from __future__ import annotations

from typing import Any


def merge_parameter(base_params: Any, override_params: Any) -> Any:
    """Set each of `override_params` on `base_params` (an argparse Namespace or an object),
    converted to the type of the value it replaces, as NNI does; an unknown name is an
    error."""
    if override_params is None:
        return base_params
    for key, value in override_params.items():
        if not hasattr(base_params, key):
            raise ValueError(f"Key '{key}' not found in base parameters.")
        current = getattr(base_params, key)
        if current is not None and value is not None and type(current) is not type(value):
            value = type(current)(value)
        setattr(base_params, key, value)
    return base_params
