"""stub"""

from pathlib import Path

from tunectl.importers.model import Imported


def import_pai(path: Path, out_dir: Path) -> Imported:
    raise NotImplementedError
