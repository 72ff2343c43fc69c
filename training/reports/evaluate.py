"""Evaluate a trained model on a prepared dataset's split, through the inference path users get.

    python -m training.reports.evaluate --model RUN/model.safetensors --data DATA --report REPORT

Writes REPORT/metrics.json (per shape, per category, mean), REPORT/report.md (a table per
category), REPORT/views.png (the method's intermediate outputs beside the truth for the
first shapes) and REPORT/sheet.png (input | reconstruction at two fixed views | ground truth,
a few shapes per category). Implicit models: IoU on the record's uniform points, Chamfer-L1
(accuracy, completeness), normal consistency and F-scores on 100k surface samples of the
extracted mesh. Point-cloud models: prediction -> truth and truth -> prediction distances
x100 and F-scores. Two-stage implicit models (IM-NET's route) with ``--shape-codes``: the
shape autoencoder's code of each record's voxel grid instead of the picture's, what a perfect
image encoder would give; the gap to the pictures' figures is the image encoder's.
Viewer-frame models (pixel-aligned features) also report ``elevation_error``: degrees between
the elevation they estimated and the render's camera, which turns the user's result upright.

With ``--photos DIR`` (photo-like pictures of the split's renders, `training.data.photos`)
each shape's input is its photo, cut out as ``recon3d reconstruct`` cuts it out
(``--background``, default auto: the segmentation network), instead of its transparent
render; `training.reports.compare` against the renders' report gives what the photo costs,
shape by shape:

    python -m training.data.photos --data DATA --split val --out PHOTOS
    python -m training.reports.evaluate --model implicit --data DATA --split val \
        --photos PHOTOS --report REPORT-photos

``--background truth`` cuts each photo out with its truth mask instead, what a perfect
segmentation would give: the gap between the two reports is what the masks cost, the gap
to the renders' what the photos' colours and light cost.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from recon_core.checkpoint import CheckpointError
from recon_core.cli import add_result_options
from recon_core.data import (
    SPLITS,
    DatasetError,
    PreparedDataset,
    atomic_write_bytes,
    read_index,
    read_record,
    unpack_voxels,
)
from recon_core.extraction import ExtractionError, Mesh, iso_level_logit
from recon_core.metrics import iou, pointcloud_metrics, surface_metrics
from recon_core.picture import PictureError, read_picture
from recon_core.request import BACKGROUNDS
from recon_core.visualize import depth_image, hstack

__all__ = ["PER_SHAPE_LABELS", "main", "evaluate", "cell"]

SURFACE_SAMPLES = 100_000


def _mesh_surface(mesh: Mesh, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from training.data.sampling import sample_surface_random

    vertices = mesh.vertices.astype(np.float64)
    points, face = sample_surface_random(vertices, mesh.faces, SURFACE_SAMPLES, rng)
    tri = vertices[mesh.faces[face]]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return points, normals


def _contains(mesh: Mesh, points: np.ndarray) -> np.ndarray:
    """Inside test against a closed mesh: ray parity along +X with Embree."""
    from training.data.raycast import RayCaster

    caster = RayCaster(mesh.vertices.astype(np.float64), mesh.faces)
    direction = np.array([1.0, 1e-3, 2e-3])
    direction /= np.linalg.norm(direction)
    origins = points.astype(np.float64)
    inside = np.zeros(len(points), dtype=bool)
    alive = np.ones(len(points), dtype=bool)
    directions = np.broadcast_to(direction, origins.shape).copy()
    for _ in range(64):  # count crossings hit by hit
        if not alive.any():
            break
        distance = caster.hit_distance(origins[alive], directions[alive])
        hit = np.isfinite(distance)
        idx = np.flatnonzero(alive)
        inside[idx[hit]] ^= True
        origins[idx[hit]] += directions[idx[hit]] * (distance[hit, None] + 1e-6)
        alive[idx[~hit]] = False
    return inside


def _fixed_depth_of_mesh(mesh: Mesh, extrinsic: np.ndarray, intrinsic: np.ndarray, size: int):
    from recon_core.geometry import Camera
    from training.data.raycast import RayCaster

    caster = RayCaster(mesh.vertices.astype(np.float64), mesh.faces)
    return caster.depth_map(Camera(extrinsic, intrinsic, "orthographic", size, size))


def evaluate(
    model_path: Path,
    data: Path,
    split: str,
    report: Path,
    resolution: int = 128,
    limit: int | None = None,
    device: str = "auto",
    view: int = 0,
    sheet_per_category: int = 3,
    progress: bool = True,
    retrieval: Path | None = None,
    consistency: int | None = None,
    iso: float = 0.5,
    lower_iso: bool = True,
    symmetric: bool = False,
    view_hint: bool = False,
    fit: bool = False,
    shape_codes: bool = False,
    placement: str = "camera",
    photos: Path | None = None,
    background: str = "auto",
) -> dict:
    """Metrics of the model on ``split`` of ``data``; with ``retrieval`` (the training
    dataset), the same metrics for the retrieval baseline on the same inputs.
    ``consistency``: point-cloud models' silhouette test (see `Reconstructor`); ``iso``:
    implicit models' extraction level; ``lower_iso``: as `Reconstructor.mesh`, a field
    that reaches ``iso`` nowhere is meshed lower (False: it scores as empty); ``symmetric``:
    mirror-symmetric results (see `Reconstructor`); ``view_hint``: give the reconstructor the
    hint a user would, the azimuth of the render's camera rounded to the nearest of the eight
    named directions (`simulated_hint`); ``fit``: implicit models' codes fitted to the input's
    silhouette (`Reconstructor.fit_silhouette`); ``shape_codes``: two-stage implicit models
    decode their shape autoencoder's code of each record's voxel grid, not the picture's.
    ``placement`` (models that reconstruct in the viewer-centred frame): ``camera`` moves
    the result into the object frame with the render's camera (the shape alone is
    measured); ``user`` takes the result as the user gets it (upright by the estimated
    elevation, normalised) and only turns it about +Z by the render's azimuth, which the
    object frame fixes and the user's result need not. ``photos``: a folder written by
    `training.data.photos` from ``view`` 0 of this split's renders; each shape's input is
    its photo, its mask found as ``background`` says (a photo without a usable mask scores
    as an empty result), or with ``background="truth"`` the photo's truth mask: what a
    perfect segmentation would give, which tells the mask's share of what photos cost from
    the colours' and the light's."""
    from PIL import Image
    from tqdm import tqdm

    from recon_core.inference import Reconstructor
    from training.reports.retrieval import SilhouetteIndex

    iso_level_logit(iso)  # refused before the loop, which takes an ExtractionError as empty
    reconstructor = Reconstructor(model_path, device, consistency, symmetric)
    method = reconstructor.config.method
    if fit and method != "implicit":
        raise ValueError(f"{model_path}: fitting the silhouette needs an implicit model")
    if shape_codes and getattr(reconstructor.model, "shape_encoder", None) is None:
        raise ValueError(
            f"{model_path}: --shape-codes needs a two-stage implicit model (one trained with "
            "a shape autoencoder stage); this one has no shape encoder"
        )
    if shape_codes and fit:
        raise ValueError("--shape-codes measures the autoencoder's codes: drop --fit-silhouette")
    if shape_codes and photos is not None:
        raise ValueError("--shape-codes measures the autoencoder's codes: drop --photos")
    index = read_index(data)
    if method == "pointcloud":
        data_views = np.asarray(index["fixed_views"]["extrinsics"], dtype=np.float32)
        model_views = reconstructor.method.fixed_extrinsics.numpy()
        if data_views.shape != model_views.shape or not np.allclose(
            data_views, model_views, atol=1e-5
        ):
            raise DatasetError(
                f"{model_path}: its {len(model_views)} fixed views differ from the "
                f"{len(data_views)} of {data}"
            )
    baseline = SilhouetteIndex(retrieval) if retrieval else None
    per_shape_baseline = []
    records = [r for r in index["records"] if split == "all" or r["split"] == split]
    if limit:
        records = records[:limit]
    if not records:
        raise DatasetError(f"{data}: no records in the {split} split")
    photo_of = _photos_of(photos, records, view) if photos is not None else {}
    rng = np.random.default_rng(0)
    per_shape, rows = [], defaultdict(list)
    for entry in tqdm(records, desc="evaluating", unit="shape", disable=not progress):
        arrays, meta = read_record(data / entry["file"])
        result = {"id": entry["id"], "category": entry["category"]}
        shown = arrays["renders"][view]  # the input as the sheet shows it
        if shape_codes:
            encoded = _shape_code(reconstructor, arrays, index)
        elif photos is not None:
            try:
                photo, truth = photo_of[entry["id"]]
                if background == "truth":
                    picture = read_picture(photo, truth)
                else:
                    picture = read_picture(photo, background=background)
                encoded = reconstructor.encode_picture(picture)
                result["mask_source"] = picture.mask_source
                shown = picture.framed(shown.shape[0])
            except PictureError as exc:
                encoded, result["photo_error"] = None, str(exc)
        else:
            encoded = reconstructor.encode(arrays["renders"][view])
        if view_hint:
            reconstructor.view = simulated_hint(arrays["render_extrinsics"][view])
        if fit and encoded is not None:
            if photos is None:
                encoded.framed = arrays["renders"][view]  # already framed as pictures are
            encoded = reconstructor.fit_silhouette(encoded)
        if reconstructor.viewer_frame:
            result["elevation_error"] = _elevation_error(encoded, arrays, view)
        extrinsics, intrinsic = arrays["fixed_extrinsics"], arrays["fixed_intrinsics"]
        size = arrays["fixed_depth"].shape[-1]
        if method == "implicit":
            points, labels = _uniform_samples(arrays, meta)
            try:
                if encoded is None:
                    raise ExtractionError(result["photo_error"])
                user = placement == "user"
                mesh, stats = reconstructor.mesh(
                    encoded, resolution, iso, lower_iso=lower_iso, upright=user
                )
                if stats.iso != iso:  # nothing reached the level: extracted lower
                    result["lowered_iso"] = stats.iso
                if reconstructor.viewer_frame:
                    placed = _turned_by_the_azimuth if user else _placed_by_the_camera
                    mesh = placed(mesh, arrays, view)
            except ExtractionError:
                mesh = None
            if mesh is None:
                result["iou"] = _defined_iou(np.zeros(len(labels), bool), labels)
                result.update(
                    surface_metrics(np.zeros((0, 3)), None, arrays["surface_points"], None)
                )
                depths = [np.zeros((size, size), np.float32)] * 2
            else:
                result["iou"] = _defined_iou(_contains(mesh, points), labels)
                pred_points, pred_normals = _mesh_surface(mesh, rng)
                result.update(
                    surface_metrics(
                        pred_points,
                        pred_normals,
                        arrays["surface_points"],
                        arrays["surface_normals"].astype(np.float64),
                    )
                )
                depths = [
                    _fixed_depth_of_mesh(mesh, extrinsics[v], intrinsic, size) for v in (0, 4)
                ]
        else:
            if encoded is None:
                result.update(pointcloud_metrics(np.zeros((0, 3)), arrays["surface_points"]))
                depths = [np.zeros((size, size), np.float32)] * 2
            else:
                cloud = reconstructor.points(encoded)
                result.update(pointcloud_metrics(cloud, arrays["surface_points"]))
                depths = _fixed_depths_of_cloud(cloud, extrinsics, intrinsic, size)
        per_shape.append(result)
        if baseline is not None:
            per_shape_baseline.append(
                _retrieval_result(baseline, arrays, meta, entry, view, method)
            )
        if len(rows[entry["category"]]) < sheet_per_category:
            rgba = shown.astype(np.float32) / 255.0
            alpha = rgba[..., 3:4]
            picture = ((rgba[..., :3] * alpha + 1 - alpha) * 255).astype(np.uint8)
            tiles = [
                picture,
                depth_image(depths[0]),
                depth_image(depths[1]),
                depth_image(arrays["fixed_depth"][0]),
                depth_image(arrays["fixed_depth"][4]),
            ]
            rows[entry["category"]].append(hstack(tiles))
    metrics = _summarise(per_shape)
    if method == "implicit":
        metrics["lowered_iso_shapes"] = sum("lowered_iso" in r for r in per_shape)
    if reconstructor.viewer_frame:
        metrics["placement"] = placement
    if baseline is not None:
        metrics["retrieval"] = _summarise(per_shape_baseline)
        metrics["retrieval"]["data"] = str(retrieval)
    metrics.update(
        model=str(model_path),
        method=method,
        data=str(data),
        split=split,
        resolution=resolution if method == "implicit" else None,
        iso=iso if method == "implicit" else None,
        symmetric=symmetric,
        view_hint=view_hint,
        fit_silhouette=fit,
        shape_codes=shape_codes,
        photos=None if photos is None else str(photos),
        background=background if photos is not None else None,
    )
    if photos is not None:
        from recon_core.segmentation import segmentation_weights

        metrics["segmentation"] = str(segmentation_weights())
        metrics["photo_errors"] = sum("photo_error" in r for r in per_shape)
    report.mkdir(parents=True, exist_ok=True)
    text = json.dumps(metrics, indent=1).encode("utf-8")
    atomic_write_bytes(report / "metrics.json", lambda handle: handle.write(text))
    markdown = _markdown(metrics).encode("utf-8")
    atomic_write_bytes(report / "report.md", lambda handle: handle.write(markdown))
    sheet = np.concatenate([row for cat in sorted(rows) for row in rows[cat]], axis=0)
    Image.fromarray(sheet).save(report / "sheet.png")
    Image.fromarray(_method_sheet(reconstructor, data, split)).save(report / "views.png")
    return metrics


def _fixed_depths_of_cloud(cloud: np.ndarray, extrinsics, intrinsic, size: int) -> list:
    """The point cloud's depth at fixed views 0 and 4, for the report's sheet."""
    import torch

    from recon_core.fusion import pseudo_render

    rendered = pseudo_render(
        torch.as_tensor(cloud)[None],
        torch.zeros(1, len(cloud)),
        torch.as_tensor(extrinsics[[0, 4]])[None],
        intrinsic,
        size,
        1,
    )
    return [rendered.depth[0, k].numpy() for k in range(2)]


def _photos_of(photos: Path, records: list[dict], view: int) -> dict:
    """Each record's photo and truth mask in the folder ``photos`` written by
    `training.data.photos`;
    DatasetError when the folder is not such a folder or lacks one of the records."""
    if view != 0:
        raise DatasetError(f"{photos}: photos are made from view 0; drop --view {view}")
    from training.data.photos import read_photos

    found = {entry["id"]: (entry["photo"], entry["truth"]) for entry in read_photos(photos)}
    missing = [r["id"] for r in records if r["id"] not in found]
    if missing:
        raise DatasetError(
            f"{photos}: no photo of {len(missing)} of the {len(records)} shapes "
            f"(first: {missing[0]}); make the photos from the same data and split"
        )
    return found


def _placed_by_the_camera(mesh: Mesh, arrays, view: int) -> Mesh:
    """A viewer-centred mesh moved into the object frame by the camera of the render it was
    reconstructed from: what is measured is the shape, as viewer-centred methods are
    measured (the user's result is turned upright by the estimated elevation instead)."""
    import torch

    from recon_core.viewframe import view_transform

    transform = view_transform(
        torch.as_tensor(arrays["render_extrinsics"][view : view + 1], dtype=torch.float64),
        torch.as_tensor(arrays["render_intrinsics"][view : view + 1], dtype=torch.float64),
        arrays["renders"].shape[1],
    )[0].numpy()
    back = np.linalg.inv(transform)
    vertices = mesh.vertices @ back[:3, :3].T + back[:3, 3]
    return Mesh(vertices.astype(np.float32), mesh.faces)


def _elevation_error(encoded, arrays, view: int) -> float | None:
    """Degrees between the elevation a viewer-frame model estimated and the render's camera
    (None without an estimate: the picture could not be read)."""
    if encoded is None or encoded.elevation is None:
        return None
    import torch

    from recon_core.viewframe import camera_elevation

    extrinsic = torch.as_tensor(arrays["render_extrinsics"][view : view + 1], dtype=torch.float64)
    return math.degrees(abs(encoded.elevation - float(camera_elevation(extrinsic)[0])))


def _turned_by_the_azimuth(mesh: Mesh, arrays, view: int) -> Mesh:
    """A user's upright result (its viewer at the front, -Y) turned about +Z to the
    azimuth the render was taken from, then normalised as every shape of the object frame
    is (the turn changes its bounding box)."""
    from recon_core.geometry import camera_centre, normalization_transform

    x, y, _ = camera_centre(arrays["render_extrinsics"][view].astype(np.float64))
    azimuth = np.arctan2(x, -y)  # as `recon_core.geometry.view_direction` places cameras
    c, s = np.cos(azimuth), np.sin(azimuth)
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    turned = mesh.vertices.astype(np.float64) @ turn.T
    norm = normalization_transform(turned)
    placed = turned @ norm[:3, :3].T + norm[:3, 3]
    return Mesh(placed.astype(np.float32), mesh.faces)


def _shape_code(reconstructor, arrays, index):
    """The shape autoencoder's code of a record's voxel grid, as an encoded picture."""
    import torch

    from recon_core.inference import Encoded

    resolution = int(index["settings"]["occupancy"]["voxel_resolution"])
    grid = unpack_voxels(arrays["voxels"], resolution).astype(np.float32)
    voxels = torch.from_numpy(grid)[None, None].to(reconstructor.device)
    with torch.no_grad():
        return Encoded("implicit", latent=reconstructor.model.shape_encoder(voxels))


def simulated_hint(extrinsic: np.ndarray):
    """The view hint a user would give for a picture taken by the camera ``extrinsic``: the
    nearest of the eight named directions (`recon_core.colour.VIEW_NAMES`), no elevation."""
    from recon_core.colour import ViewHint
    from recon_core.viewpoint import camera_angles

    azimuth, _ = camera_angles(np.asarray(extrinsic, dtype=np.float64))
    return ViewHint(float(round(azimuth / 45.0) * 45.0) % 360.0)


def _method_sheet(reconstructor, data: Path, split: str) -> np.ndarray:
    """The method's own training preview (its intermediate outputs beside the truth) for
    the first shapes of the split."""
    import torch

    from recon_core.engine import preview_batch

    settings = reconstructor.method.sample_settings().without_augmentation()
    dataset = PreparedDataset(data, None if split == "all" else split, "all", settings, 0)
    batch = preview_batch(dataset, reconstructor.device)
    with torch.no_grad():
        return reconstructor.method.preview(reconstructor.model, batch)


def _uniform_samples(arrays, meta) -> tuple[np.ndarray, np.ndarray]:
    """A record's uniform occupancy samples (IoU is measured on them) and their labels."""
    uniform = int(meta["uniform_count"])
    points = arrays["occupancy_points"][:uniform].astype(np.float64)
    labels = np.unpackbits(arrays["occupancy_labels"], count=len(arrays["occupancy_points"]))
    return points, labels[:uniform].astype(bool)


def _defined_iou(predicted: np.ndarray, truth: np.ndarray) -> float | None:
    """IoU on the uniform samples, or None when the truth has no inside (a shape made of
    sheets thinner than the occupancy grid's voxels has none, see `training.data.sampling`):
    no prediction could score there, so the shape is left out of the IoU means."""
    return iou(predicted, truth) if truth.any() else None


def _retrieval_result(baseline, arrays, meta, entry, view: int, method: str) -> dict:
    """Metrics of the retrieved training shape against the test shape."""
    found, silhouette_iou = baseline.query(arrays["renders"][view][..., 3])
    result = training_shape_scores(baseline, found, arrays, meta, entry, method)
    result["silhouette_iou"] = silhouette_iou
    return result


def training_shape_scores(baseline, found, arrays, meta, entry, method="implicit") -> dict:
    """Metrics of the training shape ``found`` (a record of ``baseline``, a
    `training.reports.retrieval.SilhouetteIndex`) against the shape of ``arrays``."""
    shape = baseline.shape(found)
    result = {"id": entry["id"], "category": entry["category"], "retrieved": found["id"]}
    if method == "implicit":
        points, labels = _uniform_samples(arrays, meta)
        result["iou"] = _defined_iou(baseline.inside(shape, points), labels)
        result.update(
            surface_metrics(
                shape["surface_points"],
                shape["surface_normals"],
                arrays["surface_points"],
                arrays["surface_normals"].astype(np.float64),
            )
        )
    else:
        result.update(pointcloud_metrics(shape["surface_points"], arrays["surface_points"]))
    return result


def _mean(values: list) -> float | None:
    """Mean of the defined values (None: a metric the shape has none of, see `_defined_iou`)."""
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def cell(value: float | None, digits: int = 4) -> str:
    """A table cell: the figure, or '-' where it is undefined."""
    return "-" if value is None else f"{value:.{digits}f}"


PER_SHAPE_LABELS = frozenset(
    {"id", "category", "retrieved", "lowered_iso", "mask_source", "photo_error"}
)
"""Keys of a per-shape result that name or describe the shape rather than score it."""


def _summarise(per_shape: list[dict]) -> dict:
    keys = [k for k in per_shape[0] if k not in PER_SHAPE_LABELS]
    by_category = defaultdict(list)
    for r in per_shape:
        by_category[r["category"]].append(r)
    categories = {
        cat: {"shapes": len(rs), **{k: _mean([r[k] for r in rs]) for k in keys}}
        for cat, rs in sorted(by_category.items())
    }
    mean = {k: _mean([c[k] for c in categories.values()]) for k in keys}
    mean["shapes"] = len(per_shape)
    return {"mean_over_categories": mean, "per_category": categories, "per_shape": per_shape}


def _markdown(metrics: dict) -> str:
    keys = [k for k in metrics["mean_over_categories"] if k != "shapes"]
    lines = [
        f"Evaluation of `{metrics['model']}` on the {metrics['split']} split of "
        f"`{metrics['data']}`"
        + (", results mirror-symmetric" if metrics.get("symmetric") else "")
        + (", view hinted (the nearest named direction)" if metrics.get("view_hint") else "")
        + (", codes fitted to the silhouette" if metrics.get("fit_silhouette") else "")
        + (", the shape autoencoder's codes" if metrics.get("shape_codes") else ""),
        "",
        "| category | shapes | " + " | ".join(keys) + " |",
        "|---|---:|" + "---:|" * len(keys),
    ]
    for cat, values in metrics["per_category"].items():
        lines.append(
            f"| {cat} | {values['shapes']} | " + " | ".join(cell(values[k]) for k in keys) + " |"
        )
    mean = metrics["mean_over_categories"]
    lines.append(
        f"| **mean** | {mean['shapes']} | " + " | ".join(cell(mean[k]) for k in keys) + " |"
    )
    if metrics.get("lowered_iso_shapes"):
        lines += [
            "",
            f"{metrics['lowered_iso_shapes']} of {mean['shapes']} meshes came at a lower iso "
            f"level than {metrics['iso']:g}: nothing of their field reached it.",
        ]
    if "retrieval" in metrics:
        base = metrics["retrieval"]
        lines += [
            "",
            f"Retrieval baseline (the training shape of `{base['data']}` whose rendered "
            "silhouette best matches the input), same inputs:",
            "",
            "| category | shapes | " + " | ".join(keys) + " |",
            "|---|---:|" + "---:|" * len(keys),
        ]
        for cat, values in base["per_category"].items():
            lines.append(
                f"| {cat} | {values['shapes']} | "
                + " | ".join(cell(values.get(k)) for k in keys)
                + " |"
            )
        bmean = base["mean_over_categories"]  # a retrieved shape has no elevation estimate
        lines.append(
            f"| **mean** | {bmean['shapes']} | "
            + " | ".join(cell(bmean.get(k)) for k in keys)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.reports.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, type=Path, help="checkpoint (.safetensors)")
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset")
    parser.add_argument("--split", default="test", choices=[*SPLITS, "all"])
    parser.add_argument("--report", required=True, type=Path, help="folder for the report")
    parser.add_argument("--resolution", type=int, default=128, help="mesh extraction grid")
    parser.add_argument("--limit", type=int, help="evaluate at most this many shapes")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--retrieval",
        type=Path,
        help="training dataset: also score the silhouette-retrieval baseline from it",
    )
    parser.add_argument(
        "--iso", type=float, default=0.5, help="implicit models: occupancy level (0-1)"
    )
    parser.add_argument(
        "--exact-iso",
        action="store_true",
        help="implicit models: never lower the level (a field below it scores as empty)",
    )
    add_result_options(parser)
    parser.add_argument(
        "--view-hint",
        action="store_true",
        help="give each input the view hint a user would: its camera's azimuth rounded to "
        "the nearest of the eight named directions",
    )
    parser.add_argument(
        "--fit-silhouette",
        action="store_true",
        help="implicit models: fit each code to the input's silhouette (with --view-hint, "
        "as a user who names the view would)",
    )
    parser.add_argument(
        "--shape-codes",
        action="store_true",
        help="two-stage implicit models: decode the shape autoencoder's code of each "
        "record's voxel grid instead of the picture's (the bound a perfect image encoder "
        "would reach)",
    )
    parser.add_argument(
        "--placement",
        choices=("camera", "user"),
        default="camera",
        help="models that reconstruct as the picture shows the object: move the result into "
        "the object frame with the render's camera (camera), or take it as the user gets it, "
        "upright by the estimated elevation, turned only by the render's azimuth (user)",
    )
    parser.add_argument(
        "--photos",
        type=Path,
        help="folder written by training.data.photos from this split: each shape's input is "
        "its photo-like picture, cut out as recon3d does, instead of its transparent render",
    )
    parser.add_argument(
        "--background",
        choices=(*BACKGROUNDS, "truth"),
        default="auto",
        help="with --photos: where each photo's mask comes from, as recon3d's --background, "
        "or truth: the photo's truth mask (what a perfect segmentation would give)",
    )
    parser.add_argument(
        "--segmentation",
        type=Path,
        help="with --photos: segmentation weights to cut them out with instead of the bundled ones "
        "(a fine-tuned candidate, training.train_segmentation)",
    )
    args = parser.parse_args(None if argv is None else list(argv))
    if args.segmentation is not None:
        from recon_core.segmentation import SegmentationError, use_weights

        if args.photos is None:
            print(f"error: --segmentation {args.segmentation}: needs --photos", file=sys.stderr)
            return 2
        try:
            use_weights(args.segmentation)
        except SegmentationError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        metrics = evaluate(
            args.model,
            args.data,
            args.split,
            args.report,
            args.resolution,
            args.limit,
            args.device,
            progress=not args.no_progress,
            retrieval=args.retrieval,
            consistency=args.consistency,
            iso=args.iso,
            lower_iso=not args.exact_iso,
            symmetric=args.symmetric,
            view_hint=args.view_hint,
            fit=args.fit_silhouette,
            shape_codes=args.shape_codes,
            placement=args.placement,
            photos=args.photos,
            background=args.background,
        )
    except (CheckpointError, DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_markdown(metrics))
    print(
        f"report: {args.report}/report.md, {args.report}/metrics.json, "
        f"{args.report}/sheet.png, {args.report}/views.png"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
