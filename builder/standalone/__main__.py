"""Entry point when this folder is run as a script: `python <folder> <command> ...`.

The folder is importable under whatever name it was copied to; its parent goes on sys.path.
"""

import importlib
import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(_here.parent))
    cli = importlib.import_module(f"{_here.name}.cli")
else:  # python -m kernel_builder.standalone
    from . import cli

sys.exit(cli.main())
