"""Train on several prepared datasets at once: write a dataset whose index lists the records
of others, in place (no record is copied).

    python -m training.data.combine data/sweethome3d data/procedural --out data/bundled

The datasets must have been prepared with the same settings (views, sizes, sampling), so
that every record can be batched with every other. Record paths in the combined index are
relative to ``--out``: move the folders together.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from recon_core.data import DatasetError, read_index, write_index

__all__ = ["combine", "main"]


def combine(roots: list[Path], out: Path) -> dict:
    """Write ``out/index.json`` listing the records of every dataset in ``roots``."""
    if not roots:
        raise DatasetError("no dataset to combine")
    out = Path(out)
    indexes = [read_index(root) for root in roots]
    first = indexes[0]
    for root, index in zip(roots[1:], indexes[1:], strict=True):
        for key in ("settings", "fixed_views"):
            if index[key] != first[key]:
                raise DatasetError(
                    f"{root}: prepared with other {key.replace('_', ' ')} than {roots[0]}; "
                    "prepare both with the same options"
                )
    if out.resolve() in {Path(root).resolve() for root in roots}:
        raise DatasetError(f"{out}: the combined dataset must go to a new folder")
    out.mkdir(parents=True, exist_ok=True)
    records, seen = [], {}
    for root, index in zip(roots, indexes, strict=True):
        for entry in index["records"]:
            if entry["id"] in seen:
                raise DatasetError(f"{root}: record {entry['id']!r} is also in {seen[entry['id']]}")
            seen[entry["id"]] = root
            path = Path(root) / entry["file"]
            records.append(dict(entry, file=Path(os.path.relpath(path, out)).as_posix()))
    records.sort(key=lambda e: e["id"])

    def count(key: str) -> dict[str, int]:
        return dict(sorted(Counter(str(e[key]) for e in records).items()))

    index = {
        "fixed_views": first["fixed_views"],
        "settings": first["settings"],
        "summary": {
            "records": len(records),
            "categories": count("category"),
            "splits": count("split"),
            "sources": count("source"),
            "licences": count("licence"),
            "skipped": sum(i["summary"].get("skipped", 0) for i in indexes),
            "combined_from": [str(root) for root in roots],
        },
        "records": records,
    }
    write_index(out, index)
    return index


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.data.combine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("datasets", nargs="+", help="prepared dataset folders")
    parser.add_argument("--out", required=True, help="folder for the combined index")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        index = combine([Path(d) for d in args.datasets], Path(args.out))
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = index["summary"]
    print(
        f"{args.out}: {summary['records']} records from {len(args.datasets)} datasets "
        f"({', '.join(f'{k} {v}' for k, v in summary['sources'].items())})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
