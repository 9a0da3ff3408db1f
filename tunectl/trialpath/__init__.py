"""The directory put on the Python path of every trial the local provider starts.

It holds modules trial code imports by another project's name: `nni`, tunectl's
compatibility module for NNI trial code (`import nni; nni.get_next_parameter();
nni.report_final_result(...)`), speaking tunectl's report protocol (`tunectl.report`).
The real NNI package is not needed, and inside a tunectl trial this one is the `nni` that
imports. Nothing in tunectl imports these modules; they import only the standard library
and `tunectl.report`.
"""

from __future__ import annotations

from pathlib import Path

DIRECTORY = str(Path(__file__).resolve().parent)
