"""Plans: actions and changes (`change`), the differ (`differ`), plan files (`planfile`).

Computing a plan is pure: the differ takes a configuration, a read of the state and a
refresh result, and returns a `Plan`. Rendering lives in `tunectl.views`.
"""
