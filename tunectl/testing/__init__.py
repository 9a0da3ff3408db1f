"""Test support shipped with tunectl: the provider conformance suite (`conformance`), an
in-process scripted provider (`fake`) and emulators (`s3`).

Importing this package needs pytest only where a module says so (`conformance`).
"""
