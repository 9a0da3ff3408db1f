"""Test support shipped with tunectl: the provider conformance suite and emulators.

Importing this package needs pytest only where a module says so (`conformance`).
"""
