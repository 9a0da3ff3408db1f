"""Views: turning plans, states and apply progress into text, JSON and markdown.

Every renderer here is a pure function of the data it is given (a `Plan`, exported state,
outputs) and returns a string, or writes only to the stream it was handed; none reads files,
the state or the environment. Whether to colour is decided by the caller (the CLI) and passed
in. The computing happens elsewhere (`tunectl.plans`, `tunectl.engine`): compute, then render.

- `plan_human`: the plan in Terraform's layout, with `+ ~ -/+ -` symbols.
- `plan_json`: the plan as machine-readable JSON (format documented in docs/plan-json.md).
- `plan_markdown`: the plan as a pull-request comment.
- `trials`, `report`: an experiment's trials as a table, CSV and JSON; the HTML and
  Markdown report around Optuna's plots (docs/results.md).
- `apply`, `outputs`: what apply shows while it runs, and outputs.
"""
