"""The Sweet Home 3D furniture library (Debian package ``sweethome3d-furniture``).

About 820 artist-made OBJ models with MTL materials and textures in five ``.sh3f`` zip
catalogs, each described by a ``PluginFurnitureCatalog.properties`` file (Java properties:
``name#N``, ``category#N``, ``model#N``, ``modelRotation#N``, ``width/depth/height#N`` in
centimetres, ``creator#N``) and a licence per catalog (CC0 or CC-BY 3.0).

Frame: models are Y-up with their front towards +Z. Sweet Home 3D first rotates a model by
``modelRotation`` (a row-major 3x3 applied to column vectors), then stretches its bounding
box to width (x) x height (y) x depth (z); we do the same, then rotate Y-up/front +Z into
the object frame (+Z up, front -Y) with ``axis_conversion("+y", "+z")``.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "PACKAGE",
    "CatalogEntry",
    "fetch_package",
    "extract_catalogs",
    "read_catalogs",
    "map_category",
    "parse_properties",
    "entry_spec",
    "DEFAULT_CACHE",
]

PACKAGE = "sweethome3d-furniture"
DEFAULT_CACHE = Path.home() / ".cache" / "recon3d" / "sweethome3d"


@dataclass
class CatalogEntry:
    """One model of a catalog."""

    id: str
    name: str
    catalog_category: str
    category: str
    model: Path
    rotation: np.ndarray
    size_cm: tuple[float, float, float]
    """(width, depth, height) in centimetres as the catalog states them."""
    creator: str
    licence: str
    """SPDX identifier: CC0-1.0 or CC-BY-3.0."""
    licence_text: str
    catalog: str
    door_or_window: bool


# -- package download and extraction -------------------------------------------------------


def fetch_package(cache: Path) -> Path:
    """The package's .deb in ``cache``, downloaded with ``apt-get download`` if absent."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        raise RuntimeError(
            f"apt-get not found: download {PACKAGE}'s .deb by hand and pass its folder as --path"
        )
    result = subprocess.run(
        ["apt-get", "download", PACKAGE], cwd=cache, capture_output=True, text=True
    )
    found = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if result.returncode != 0 or not found:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(
            f"apt-get download {PACKAGE} failed ({detail[-1] if detail else 'no output'}); "
            "run 'apt-get update' first"
        )
    return found[-1]


def _deb_data_tar(deb: Path) -> tarfile.TarFile:
    """Open the data archive inside a .deb (an ar archive) without needing dpkg."""
    blob = deb.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise RuntimeError(f"{deb}: not a Debian package")
    offset = 8
    while offset + 60 <= len(blob):
        header = blob[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = blob[offset + 60 : offset + 60 + size]
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise RuntimeError(f"{deb}: zstd-compressed package; extract it with dpkg -x")
            return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        offset += 60 + size + (size & 1)
    raise RuntimeError(f"{deb}: no data archive inside")


def extract_catalogs(source: Path, cache: Path, only: Iterable[str] | None = None) -> Path:
    """Folder holding one extracted folder per ``.sh3f`` catalog (``only`` these catalog
    names, e.g. ``BlendSwap-CC-0``, when given).

    ``source`` may be a folder with ``.sh3f`` files (for example an unpacked package), a
    ``.deb``, or a folder holding the ``.deb``."""
    out = cache / "catalogs"
    if source.is_dir():
        sh3f = sorted(source.rglob("*.sh3f"))
        debs = sorted(source.glob(f"{PACKAGE}_*.deb"))
    else:
        sh3f, debs = [], [source]
    if not sh3f:
        if not debs:
            raise RuntimeError(f"{source}: no .sh3f catalogs and no {PACKAGE} package found")
        package_dir = cache / "package"
        if not any(package_dir.rglob("*.sh3f")):
            with _deb_data_tar(debs[-1]) as tar:
                members = [m for m in tar.getmembers() if m.name.endswith(".sh3f")]
                tar.extractall(package_dir, members=members, filter="data")
        sh3f = sorted(package_dir.rglob("*.sh3f"))
    for archive in sh3f:
        if only is not None and archive.stem not in set(only):
            continue
        target = out / archive.stem
        if (target / "PluginFurnitureCatalog.properties").exists():
            continue
        partial = out / f".{archive.stem}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return out


# -- catalog parsing ---------------------------------------------------------------------


def parse_properties(text: str) -> dict[str, str]:
    """Java ``.properties``: comments, ``key=value`` / ``key: value``, backslash line
    continuations and ``\\uXXXX`` escapes."""
    logical, pending = [], ""
    for raw in text.splitlines():
        line = raw.lstrip() if not pending else raw.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    props = {}
    for line in logical:
        match = re.match(r"((?:[^=:\s\\]|\\.)*)\s*[=:\s]\s*(.*)$", line)
        if not match:
            continue
        key, value = (_unescape(part) for part in match.groups())
        props[key] = value
    return props


def _unescape(text: str) -> str:
    def repl(match: re.Match) -> str:
        token = match.group(1)
        if token.startswith("u"):
            return chr(int(token[1:], 16))
        return {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(token, token)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", repl, text)


# Ordered (pattern, category) rules on the lower-cased English name; first match wins.
_NAME_RULES: list[tuple[str, str]] = [
    (r"bedside|night ?stand", "cabinet"),
    (
        r"chest freezer|fridge|refrigerator|freezer|oven|microwave|washing machine|dryer|"
        r"dishwasher|cooker|cooktop|stove|hood|water heater|boiler|furnace|air conditioning",
        "appliance",
    ),
    (
        r"\bcar\b|sedan|suv\b|\bvan\b|truck|\bbus\b|peugeot|ford|renault|chevrolet|\bvw\b|"
        r"seat leon|beetle",
        "car",
    ),
    (r"\blamp|light\b|lights\b|lantern|chandelier|lamppost", "lamp"),
    (r"sofa|couch|settee|day bed", "sofa"),
    (r"\bbed\b|bunk|crib|cradle|futon$|baby bed|child bed|mezzanine bed|captain's bed", "bed"),
    (r"armchair|chair|stool|\bseat\b|puff|ottoman", "chair"),
    (r"\bbench\b", "bench"),
    (r"table|desk|workbench|island\b", "table"),
    (
        r"cabinet|wardrobe|bookcase|shel(f|ves)|dresser|drawers|cupboard|\bchest\b|locker|"
        r"sideboard|tv stand|vanity|closet|filing|safe\b",
        "cabinet",
    ),
    (r"\bvase\b", "vase"),
    (r"bottle", "bottle"),
    (r"\bmug\b|\bcup\b|cup$", "mug"),
    (
        r"plant|tree|palm|pine|bush|cactus|ficus|yucca|bamboo|bonsai|orchid|flower|tulip|lily|"
        r"hedge|maple|poplar|cypress|acacia|beech|spathiphyllum|blossom|succulent",
        "plant",
    ),
    (r"\btv\b|screen|monitor|imac|laptop|ibook", "screen"),
    (r"biplane|airplane|aeroplane", "airplane"),
    (r"motorbike|bike|bicycle|scooter|tricycle", "bike"),
    (r"washbasin|\bsink\b|toilets? unit|bidet|urinal|\bbath\b|bathtub|shower stall", "sanitary"),
    (r"\bjar\b|pottery", "vase"),
    (r"\bglass\b|\bbowl\b|\bplate\b|\bpan\b|\bpot\b", "tableware"),
    (r"piano", "piano"),
    (r"radiator", "radiator"),
    (r"\bbox\b|crate|barrel|trunck|trunk|suitcase", "box"),
    (r"trash ?can|dustbin|recycling bin", "bin"),
]


def map_category(name: str, catalog_category: str, door_or_window: bool) -> str:
    """Our category for a catalog model ('other' when nothing fits)."""
    if door_or_window or catalog_category.lower() == "doors and windows":
        return "door_window"
    if catalog_category.lower() == "characters":
        return "person"
    lowered = name.lower()
    for pattern, category in _NAME_RULES:
        if re.search(pattern, lowered):
            return category
    return "other"


def read_catalogs(catalogs: Path) -> list[CatalogEntry]:
    """Every model of every extracted catalog under ``catalogs``."""
    entries = []
    for folder in sorted(
        p for p in catalogs.iterdir() if p.is_dir() and not p.name.startswith(".")
    ):
        props_file = folder / "PluginFurnitureCatalog.properties"
        if not props_file.exists():
            continue
        props = parse_properties(props_file.read_bytes().decode("latin-1"))
        licence_text = props.get("license", "").split("  ")[0].strip() or _licence_from_header(
            props_file
        )
        licence = (
            "CC0-1.0"
            if "public domain" in licence_text.lower()
            else ("CC-BY-3.0" if "attribution" in licence_text.lower() else licence_text)
        )
        indices = sorted(int(k.split("#")[1]) for k in props if re.fullmatch(r"model#\d+", k))
        for n in indices:
            rotation = np.eye(3)
            if f"modelRotation#{n}" in props:
                values = [float(v) for v in props[f"modelRotation#{n}"].split()]
                if len(values) == 9:
                    rotation = np.array(values).reshape(3, 3)
            name = props.get(f"name#{n}", f"model {n}")
            catalog_category = props.get(f"category#{n}", "")
            door = props.get(f"doorOrWindow#{n}", "false").strip().lower() == "true"
            entries.append(
                CatalogEntry(
                    id=f"sweethome3d/{props.get(f'id#{n}', f'{folder.name}#{n}')}",
                    name=name,
                    catalog_category=catalog_category,
                    category=map_category(name, catalog_category, door),
                    model=folder / props[f"model#{n}"].lstrip("/"),
                    rotation=rotation,
                    size_cm=tuple(
                        float(props.get(f"{k}#{n}", 0) or 0) for k in ("width", "depth", "height")
                    ),
                    creator=props.get(f"creator#{n}", "").strip(),
                    licence=licence,
                    licence_text=licence_text,
                    catalog=folder.name,
                    door_or_window=door,
                )
            )
    return entries


def _licence_from_header(props_file: Path) -> str:
    head = props_file.read_bytes()[:2000].decode("latin-1")
    if "CC-0" in head or "public domain" in head.lower():
        return "Public domain (CC0)"
    if "Attribution" in head:
        return "Creative Commons Attribution 3.0"
    return "unknown"


def entry_spec(entry: CatalogEntry, catalogs: Path):
    """The pipeline's ShapeSpec for a catalog model."""
    from training.data.pipeline import ShapeSpec

    width, depth, height = entry.size_cm
    return ShapeSpec(
        id=entry.id,
        category=entry.category,
        kind="file",
        params={
            "path": str(entry.model),
            "up": "+y",
            "front": "+z",
            "rotation": entry.rotation.tolist(),
            "stretch_to": [width, height, depth],
        },
        meta={
            "source": "sweethome3d",
            "name": entry.name,
            "catalog": entry.catalog,
            "catalog_category": entry.catalog_category,
            "licence": entry.licence,
            "licence_text": entry.licence_text,
            "author": entry.creator,
            "original_file": str(entry.model.relative_to(catalogs)),
        },
    )
