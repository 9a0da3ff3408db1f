"""Plans: actions and changes (`change`), the differ (`differ`), plan files (`planfile`).

Computing a plan is pure: the differ takes a configuration, a read of the state and a
refresh result, and returns a `Plan`. Rendering lives in `tunectl.views`, which builds the
sentences people read from the plan's fields. The exceptions are the sentences the JSON
plan format (1.0) itself carries: a change's `reasons` and `consequences`, and each
plan-time error's detail (errors are `Diagnostic`s, as everywhere in tunectl).
"""
