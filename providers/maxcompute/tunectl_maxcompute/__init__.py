"""tunectl's MaxCompute provider (PAI commands and SQL through pyodps) and an emulator of
the MaxCompute REST API for tests and dry runs (`tunectl_maxcompute.emulator`)."""

from tunectl_maxcompute.provider import MaxComputeProvider

__all__ = ["MaxComputeProvider"]
