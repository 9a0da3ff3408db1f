"""The HCL language, apart from what tunectl means by it: parsing python-hcl2's grammar
into a positioned syntax tree (`syntax`, `reader`), evaluating expressions safely with no
`eval` (`expr`), the function library (`functions`) and canonical formatting (`fmt`).

This package knows nothing of experiments, providers or the state; `tunectl.config`
decodes tunectl's own blocks on top of it.
"""
