"""Figures for the documentation, made from the bundled models.

    python -m training.reports.figures resolutions --picture examples/sofa.png \\
        --out docs/resolutions.png

    python -m training.reports.figures consistency --model runs/pc/model.safetensors --data DATA \
        --out docs/consistency.png

``resolutions``: the picture, then the implicit model's mesh extracted at 32^3, 64^3, 128^3
and 256^3 from one latent code (the encoder runs once), each rendered from the same
viewpoint with its face count.

``nearest``: for shapes of an oracle report (`training.reports.oracle`), the input render, the
model's mesh, the nearest training shape by IoU and the truth, each with its IoU.

    python -m training.reports.figures nearest --model implicit --data data/sweethome3d \
        --oracle reports/oracle-test --shapes ID ID ... --out docs/nearest.png

``consistency``: for the first shapes of a prepared dataset, a point-cloud model's input
render, its cloud with every positive-mask point, the cloud the fixed views' silhouettes
agree on (`recon3d reconstruct --consistency 0`), and the true surface points.

``masks``: the first photo-like pictures of a folder written by `training.data.photos`, each
beside the segmentation network's mask against the truth (yellow: both, red: the network
only, green: the truth only) and its IoU; ``--segmentation FILE`` shows other segmentation weights
(a fine-tuned candidate, `training.train_segmentation`) than the bundled ones.

    python -m training.reports.figures masks --photos data/photos-val --out docs/photos_masks.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["resolutions", "consistency", "nearest", "masks", "main"]

_SIZE = 256


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """An RGBA uint8 image over white, resized to the figures' tile size."""
    from PIL import Image

    image = Image.fromarray(rgba).convert("RGBA")
    image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
    return np.asarray(image.convert("RGB").resize((_SIZE, _SIZE)))


def resolutions(
    picture_path: Path, model: str = "implicit", sizes: Iterable[int] = (32, 64, 128, 256)
) -> np.ndarray:
    """One row: the picture, then the mesh of one latent code at each resolution."""
    from PIL import Image, ImageDraw

    from recon_core.geometry import sample_mesh
    from recon_core.inference import Reconstructor
    from recon_core.picture import read_picture
    from recon_core.preview import preview_camera, render_splats

    reconstructor = Reconstructor(model, "cpu")
    encoded = reconstructor.encode_picture(read_picture(picture_path))
    tiles = [_on_white(encoded.framed)]
    camera = preview_camera(30.0, 20.0, _SIZE)
    for resolution in sizes:
        mesh = reconstructor.coloured_mesh(encoded, resolution)
        points, normals, colours = sample_mesh(mesh.vertices, mesh.faces, mesh.colours, 120_000)
        image = Image.fromarray(render_splats(points, camera, colours, normals, radius=1))
        ImageDraw.Draw(image).text((6, 6), f"{resolution}^3: {len(mesh.faces)} faces", "black")
        tiles.append(np.asarray(image))
    return np.concatenate(tiles, axis=1)


def consistency(model: str, data: Path, count: int = 4) -> np.ndarray:
    """One row per shape: input | all positive-mask points | silhouette-consistent points |
    true surface points, each labelled with its point count."""
    from PIL import Image, ImageDraw

    from recon_core.data import read_index, read_record
    from recon_core.inference import Reconstructor
    from recon_core.preview import preview_camera, render_splats

    reconstructor = Reconstructor(model, "cpu")
    if reconstructor.config.method != "pointcloud":
        raise ValueError(f"{model}: the consistency figure needs a point-cloud model")
    camera = preview_camera(30.0, 20.0, _SIZE)
    rows = []
    for entry in read_index(data)["records"][:count]:
        arrays, _ = read_record(data / entry["file"], ["renders", "surface_points"])
        render = arrays["renders"][0]
        encoded = reconstructor.encode(render)  # one encoding, both rules
        clouds = []
        for label, consistency in (("mask > 0", None), ("silhouettes agree", 0)):
            reconstructor.consistency = consistency
            clouds.append((label, reconstructor.points(encoded)))
        clouds.append(("truth", arrays["surface_points"][:20_000]))
        tiles = [_on_white(render)]
        for label, points in clouds:
            image = Image.fromarray(render_splats(points, camera, radius=0))
            ImageDraw.Draw(image).text((6, 6), f"{label}: {len(points)} points", "black")
            tiles.append(np.asarray(image.convert("RGB")))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def nearest(model: str, data: Path, oracle: Path, shapes: list[str]) -> np.ndarray:
    """One row per shape id: input render | the model's mesh at 128^3 | the nearest training
    shape by IoU (from the oracle report) | the truth, each labelled with its IoU."""
    import json

    from PIL import Image, ImageDraw

    from recon_core.data import read_index, read_record
    from recon_core.geometry import sample_mesh
    from recon_core.inference import Reconstructor
    from recon_core.preview import preview_camera, render_splats
    from training.reports.evaluate import _contains, _defined_iou, _uniform_samples

    report = json.loads((oracle / "metrics.json").read_text("utf-8"))
    chosen = {r["id"]: r for r in report["by_iou"]["per_shape"]}
    train_data = Path(report["train_data"])
    train_files = {r["id"]: r["file"] for r in read_index(train_data)["records"]}
    files = {r["id"]: r["file"] for r in read_index(data)["records"]}
    reconstructor = Reconstructor(model, "cpu")
    if reconstructor.config.method != "implicit":
        raise ValueError(f"{model}: the nearest figure needs an implicit model")
    camera = preview_camera(30.0, 20.0, _SIZE)
    rows = []
    for shape_id in shapes:
        if shape_id not in chosen or shape_id not in files:
            raise ValueError(f"{oracle}: no shape {shape_id!r} in its report or in {data}")
        arrays, meta = read_record(data / files[shape_id])
        points, labels = _uniform_samples(arrays, meta)
        mesh, _ = reconstructor.mesh(reconstructor.encode(arrays["renders"][0]), 128)
        iou = _defined_iou(_contains(mesh, points), labels)
        mesh_points, mesh_normals, _ = sample_mesh(mesh.vertices, mesh.faces, None, 60_000)
        found = chosen[shape_id]
        near, _ = read_record(
            train_data / train_files[found["retrieved"]], ["surface_points", "surface_normals"]
        )
        clouds = [
            (f"network: IoU {iou:.2f}", mesh_points, mesh_normals),
            (f"nearest: IoU {found['iou']:.2f}", near["surface_points"], near["surface_normals"]),
            (shape_id.rsplit("/", 1)[-1][:32], arrays["surface_points"], arrays["surface_normals"]),
        ]
        tiles = [_on_white(arrays["renders"][0])]
        for label, cloud, normals in clouds:
            image = render_splats(cloud[:60_000], camera, None, normals[:60_000].astype(float))
            image = Image.fromarray(image)
            ImageDraw.Draw(image).text((6, 6), label, "black")
            tiles.append(np.asarray(image))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def masks(photos: Path, count: int = 12, per_row: int = 3, tile: int = 160) -> np.ndarray:
    """Grid of the first ``count`` photos of ``photos``, each beside the network's mask
    coloured against the truth, its mask IoU written in the corner."""
    from PIL import Image, ImageDraw

    from recon_core.picture import PictureError, read_picture
    from training.data.photos import mask_iou, read_photos

    pairs = []
    for entry in read_photos(photos)[:count]:
        truth = np.asarray(Image.open(entry["truth"]).convert("L")) > 127
        try:
            found = read_picture(entry["photo"], background="segment").mask
        except PictureError:  # nothing stands out: an empty mask
            found = np.zeros_like(truth)
        overlay = np.zeros((*truth.shape, 3), np.uint8)
        overlay[found & truth] = (255, 230, 0)
        overlay[found & ~truth] = (230, 0, 0)
        overlay[~found & truth] = (0, 210, 0)
        score = mask_iou(found, truth)
        shown = Image.fromarray(overlay).resize((tile, tile), Image.Resampling.NEAREST)
        ImageDraw.Draw(shown).text((4, 4), f"IoU {score:.2f}", fill=(255, 255, 255))
        picture = Image.open(entry["photo"]).convert("RGB").resize((tile, tile))
        pairs.append(np.concatenate([np.asarray(picture), np.asarray(shown)], axis=1))
    if not pairs:
        raise ValueError(f"{photos}: lists no photos")
    pairs += [np.zeros_like(pairs[0])] * (-len(pairs) % per_row)
    rows = [np.concatenate(pairs[k : k + per_row], axis=1) for k in range(0, len(pairs), per_row)]
    return np.concatenate(rows, axis=0)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.reports.figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("figure", choices=["resolutions", "consistency", "nearest", "masks"])
    parser.add_argument("--picture", type=Path, default=Path("examples/sofa.png"))
    parser.add_argument("--model", help="default: implicit (resolutions), pointcloud")
    parser.add_argument("--data", type=Path, help="consistency, nearest: a prepared dataset")
    parser.add_argument(
        "--oracle", type=Path, help="nearest: a training.reports.oracle report folder"
    )
    parser.add_argument("--shapes", nargs="+", default=[], help="nearest: shape ids")
    parser.add_argument(
        "--photos", type=Path, help="masks: a folder written by training.data.photos"
    )
    parser.add_argument(
        "--segmentation", type=Path, help="masks: segmentation weights instead of the bundled ones"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(None if argv is None else list(argv))
    from PIL import Image

    from recon_core.segmentation import SegmentationError, use_weights

    try:
        if args.figure == "resolutions":
            image = resolutions(args.picture, args.model or "implicit")
        elif args.figure == "nearest":
            if args.data is None or args.oracle is None or not args.shapes:
                parser.error("nearest needs --data, --oracle and --shapes")
            image = nearest(args.model or "implicit", args.data, args.oracle, args.shapes)
        elif args.figure == "masks":
            if args.photos is None:
                parser.error("masks needs --photos")
            use_weights(args.segmentation)
            image = masks(args.photos)
        else:
            if args.data is None:
                parser.error("consistency needs --data")
            image = consistency(args.model or "pointcloud", args.data)
    except (ValueError, OSError, SegmentationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
