"""A user's folder of meshes (OBJ, PLY, STL, OFF, glTF/GLB), or ShapeNetCore v2's layout.

Plain layout: the category of a file is the name of the folder directly below ``root`` that
holds it (``root/chair/**/a.obj`` -> ``chair``); files directly in ``root`` take the name
of ``root`` itself. ShapeNetCore v2 layout: ``root/SYNSET/MODEL/models/model_normalized.obj``,
the category named from the synset (up +Y, front -Z).
"""

from __future__ import annotations

import re
from pathlib import Path

from training.data.meshes import MESH_SUFFIXES
from training.data.pipeline import ShapeSpec

__all__ = ["folder_specs", "SHAPENET_SYNSETS"]

SHAPENET_SYNSETS = {
    "02691156": "airplane",
    "02747177": "trash_bin",
    "02773838": "bag",
    "02801938": "basket",
    "02808440": "bathtub",
    "02818832": "bed",
    "02828884": "bench",
    "02843684": "birdhouse",
    "02871439": "bookshelf",
    "02876657": "bottle",
    "02880940": "bowl",
    "02924116": "bus",
    "02933112": "cabinet",
    "02942699": "camera",
    "02946921": "can",
    "02954340": "cap",
    "02958343": "car",
    "02992529": "cellphone",
    "03001627": "chair",
    "03046257": "clock",
    "03085013": "keyboard",
    "03207941": "dishwasher",
    "03211117": "display",
    "03261776": "earphone",
    "03325088": "faucet",
    "03337140": "file_cabinet",
    "03467517": "guitar",
    "03513137": "helmet",
    "03593526": "vase",
    "03624134": "knife",
    "03636649": "lamp",
    "03642806": "laptop",
    "03691459": "loudspeaker",
    "03710193": "mailbox",
    "03759954": "microphone",
    "03761084": "microwave",
    "03790512": "motorbike",
    "03797390": "mug",
    "03928116": "piano",
    "03938244": "pillow",
    "03948459": "pistol",
    "03991062": "pot",
    "04004475": "printer",
    "04074963": "remote",
    "04090263": "rifle",
    "04099429": "rocket",
    "04225987": "skateboard",
    "04256520": "sofa",
    "04330267": "stove",
    "04379243": "table",
    "04401088": "telephone",
    "04460130": "tower",
    "04468005": "train",
    "04530566": "watercraft",
    "04554684": "washer",
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "object"


def folder_specs(
    root: Path,
    layout: str = "plain",
    up: str | None = None,
    front: str | None = None,
    source: str = "folder",
) -> list[ShapeSpec]:
    """One spec per mesh file under ``root``. ``layout`` is ``plain`` or ``shapenet``;
    ``up``/``front`` name the files' axes (defaults: +Z/-Y plain, +Y/-Z ShapeNet)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    specs = []
    if layout == "shapenet":
        up, front = up or "+y", front or "-z"
        files = sorted(root.glob("*/*/models/model_normalized.obj"))
    elif layout == "plain":
        up, front = up or "+z", front or "-y"
        files = sorted(
            p for p in root.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file()
        )
    else:
        raise ValueError(f"layout must be plain or shapenet, got {layout!r}")
    for path in files:
        relative = path.relative_to(root)
        if layout == "shapenet":
            synset, model = relative.parts[0], relative.parts[1]
            category = SHAPENET_SYNSETS.get(synset, synset)
            shape_id = f"shapenet/{synset}/{model}"
        else:
            category = _slug(relative.parts[0] if len(relative.parts) > 1 else root.name)
            shape_id = f"{source}/{relative.with_suffix('').as_posix()}"
        specs.append(
            ShapeSpec(
                id=shape_id,
                category=category,
                kind="file",
                params={"path": str(path), "up": up, "front": front},
                meta={
                    "source": source if layout == "plain" else "shapenet",
                    "licence": None,
                    "author": None,
                    "original_file": str(relative),
                },
            )
        )
    return specs
