"""Importers: existing NNI and PAI AutoML experiments as tunectl HCL.

`tunectl import nni` reads an NNI experiment configuration (the v2 format NNI 2.x and 3.x
read, YAML or JSON, with its search space file or inline search space); `tunectl import
pai` reads PAI AutoML's `HpoExperimentConfig` (the JSON of its API: `yml_config`,
`platform_config` with `cmdN` lines, `metric_config`, `search_space`, ...). Each returns an
`Imported`: the HCL text (written through `tunectl.hcl.fmt`, so `tunectl fmt --check`
passes) and the `Note`s saying what was not carried over and why.

This package reads files and writes text: it never touches the state, a provider's API or
the configuration loader. Bad input (unreadable, malformed, an unknown tuner) raises a
`DiagnosticError`.
"""

from __future__ import annotations

from tunectl.importers.model import Imported, Note
from tunectl.importers.nni import import_nni
from tunectl.importers.pai import import_pai

__all__ = ["Imported", "Note", "import_nni", "import_pai"]
