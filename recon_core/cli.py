"""The ``recon3d`` command.

recon3d prepare ...   build a prepared dataset (same options as python -m training.prepare)
recon3d preview ...   preview sheet of a prepared dataset (python -m training.preview)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

__all__ = ["main"]

_DELEGATES = {
    "prepare": ("training.prepare", "build a prepared dataset from shapes"),
    "preview": ("training.preview", "render a preview sheet of a prepared dataset"),
}


def main(argv: Iterable[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="recon3d", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=sorted(_DELEGATES))
    parser.add_argument("args", nargs=argparse.REMAINDER)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    parsed = parser.parse_args(argv[:1])
    import importlib

    module = importlib.import_module(_DELEGATES[parsed.command][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
