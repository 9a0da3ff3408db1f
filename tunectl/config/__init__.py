"""The configuration language: parsing (`syntax`), evaluation (`expr`), schema checks
(`schema`), variables, and loading a directory into a `model.Config` (`load`).

This package reads files and the environment; it never touches the state or providers'
APIs (provider classes are consulted only for the attributes they accept).
"""
