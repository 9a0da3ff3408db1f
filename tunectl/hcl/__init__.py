"""The HCL language, apart from what tunectl means by it.

- `syntax`: the positioned syntax tree, and `parse` (with its cache); `grammar` runs
  python-hcl2's lark grammar and turns its errors into diagnostics; `reader` builds the
  tree from lark's, with `templates` scanning heredoc text.
- `values`: value types (`Template` for trial-time strings), conversions, limits, equality
  and arithmetic, and the one renderer of values for people and commands.
- `expr`: the evaluator (no `eval`), `traversals`: what an expression refers to,
  `functions`: the function library (the list in docs/language.md).
- `fmt`: canonical formatting.

This package knows nothing of experiments, providers or the state; `tunectl.config`
decodes tunectl's own blocks on top of it.
"""
