"""How well the colours' camera matches the camera a prepared dataset's renders were taken
with: the numbers behind the viewpoint tables of docs/experiments.md.

    python -m training.reports.camera_report --model implicit --data data/sweethome3d --split test

For the first ``--renders`` input renders of each shape of a split, the model reconstructs
the render as `recon3d` would (framed picture, 128^3 mesh or the point cloud), estimates
the viewpoint the colours are projected from (`recon_core.colour.estimate_view`, with the
model's viewpoint estimator) and compares it with the render's own camera:

- azimuth within 15 degrees, seen from behind (135 degrees or more off), median elevation
  error;
- sampling error: a predicted point takes its colour where the estimated camera puts it in
  the framed picture; it should take it where the render shows the nearest part of the true
  surface (the record's surface points). The distance between the two, median over the
  points, as a fraction of the picture's side; median over renders, and the fraction of
  renders under 5%. This is what puts the seat's colour on the predicted seat, however
  rough the prediction.

Each row runs once with the framing refined against the mask (`estimate_view`'s default,
`recon_core.colour.fit_framing`) and once with the predicted shape's bounding-box framing;
``--named-view`` adds rows where the nearest of the eight named directions is given as the
view hint (`recon3d --view`), and ``--true-angles`` rows where the camera is the render's
own, framed either way, which isolates the framing from the angles.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from recon_core.colour import (
    VIEW_NAMES,
    ViewEstimate,
    ViewHint,
    _framed_camera,
    estimate_view,
    fit_framing,
    view_name,
)
from recon_core.data import DatasetError, read_index, read_record, record_path
from recon_core.extraction import ExtractionError
from recon_core.geometry import angle_gap, project, sample_mesh
from recon_core.imaging import crop_intrinsics, square_crop_box
from recon_core.inference import COLOUR_SIZE, Reconstructor
from recon_core.picture import Picture
from recon_core.viewpoint import camera_angles

__all__ = ["camera_errors", "summarise", "main"]


def camera_errors(estimate, truth_extrinsic, truth_intrinsic, points, surface) -> dict:
    """One render's figures: the angles' errors (degrees) and the sampling error: each
    predicted point (``points`` (N, 3)) takes its colour where ``estimate``'s camera puts it
    in the picture, and should take it where the render's camera shows the part of the true
    surface (``surface`` (M, 3)) nearest to it; the median distance between the two, as a
    fraction of the picture's side."""
    from scipy.spatial import cKDTree

    azimuth, elevation = camera_angles(truth_extrinsic)
    _, nearest = cKDTree(surface).query(points)
    uv_true, _ = project(surface[nearest], truth_extrinsic, truth_intrinsic, "perspective")
    camera = estimate.camera
    uv, _ = project(points, camera.extrinsic, camera.intrinsic, "perspective")
    error = np.linalg.norm(uv - uv_true, axis=1) / camera.width
    return {
        "azimuth_error": float(angle_gap(estimate.azimuth, azimuth)),
        "elevation_error": abs(estimate.elevation - elevation),
        "sampling_error": float(np.median(error)),
    }


def _label(mode: tuple[str, bool]) -> str:
    return f"{mode[0]}, {'refined' if mode[1] else 'bounding box'}"


def nearest_named_view(azimuth: float) -> ViewHint:
    """The hint a user would give: the named direction (`recon_core.colour.VIEW_NAMES`)
    nearest to ``azimuth``, without an elevation."""
    return ViewHint(VIEW_NAMES[view_name(azimuth)])


def summarise(rows: list[dict]) -> dict:
    azimuth = np.array([r["azimuth_error"] for r in rows])
    sampling = np.array([r["sampling_error"] for r in rows])
    return {
        "renders": len(rows),
        "azimuth_within_15": round(float(np.mean(azimuth <= 15.0)), 3),
        "from_behind": round(float(np.mean(azimuth >= 135.0)), 3),
        "elevation_error_median": round(float(np.median([r["elevation_error"] for r in rows])), 1),
        "sampling_error_median": round(float(np.median(sampling)), 4),
        "sampling_error_mean": round(float(np.mean(sampling)), 4),
        "sampling_under_5pct": round(float(np.mean(sampling < 0.05)), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.reports.camera_report",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--model", default="implicit", help="bundled model name or checkpoint")
    parser.add_argument("--data", type=Path, required=True, help="a prepared dataset")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--renders", type=int, default=4, help="input renders per shape")
    parser.add_argument("--limit", type=int, help="first shapes of the split only")
    parser.add_argument(
        "--named-view",
        action="store_true",
        help="also with the nearest of the eight named directions as the view hint",
    )
    parser.add_argument(
        "--true-angles", action="store_true", help="also with the render's own camera, framed"
    )
    parser.add_argument("--out", type=Path, help="write per-render figures as JSON here")
    args = parser.parse_args(argv)
    try:
        index = read_index(args.data)
        reconstructor = Reconstructor(args.model, device="cpu")
    except (DatasetError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ids = [r["id"] for r in index["records"] if r.get("split") == args.split]
    if args.limit:
        ids = ids[: args.limit]
    if not ids:
        print(f"error: {args.data}: no {args.split} records", file=sys.stderr)
        return 2
    cameras = ["estimated"] + ["named view"] * args.named_view + ["true angles"] * args.true_angles
    modes = [(camera, refine) for camera in cameras for refine in (True, False)]
    rows: dict[tuple, list[dict]] = {m: [] for m in modes}
    per_render = []
    skipped = 0
    start = time.perf_counter()
    for shape_id in ids:
        arrays, _ = read_record(
            record_path(args.data, shape_id),
            ["renders", "render_extrinsics", "render_intrinsics", "surface_points"],
        )
        surface = arrays["surface_points"][:: max(1, len(arrays["surface_points"]) // 4000)]
        for k in range(min(args.renders, len(arrays["renders"]))):
            rgba = arrays["renders"][k]
            mask = rgba[..., 3] > 127
            picture = Picture(Path(f"{shape_id}#{k}"), rgba[..., :3], mask, "alpha")
            encoded = reconstructor.encode_picture(picture)
            try:
                if encoded.method == "implicit":
                    mesh, _ = reconstructor.mesh(encoded, 128)
                    points = sample_mesh(mesh.vertices, mesh.faces, None, 4000)[0]
                else:
                    points = reconstructor.points(encoded)
            except ExtractionError:
                skipped += 1
                continue
            if len(points) == 0:
                skipped += 1
                continue
            extrinsic = arrays["render_extrinsics"][k].astype(np.float64)
            box = square_crop_box(mask)
            intrinsic = crop_intrinsics(arrays["render_intrinsics"][k], box, COLOUR_SIZE)
            framed_mask = encoded.framed[..., 3] > 127
            prior = None
            if reconstructor.viewpoint is not None:
                prior = reconstructor.viewpoint.predict(encoded.framed)
            entry = {"id": shape_id, "render": k}
            for camera_kind in cameras:
                if camera_kind == "true angles":
                    angles = camera_angles(extrinsic)
                    boxed = ViewEstimate(
                        _framed_camera(points, extrinsic, COLOUR_SIZE), *angles, 0.0
                    )
                else:
                    hint = None
                    if camera_kind == "named view":
                        hint = nearest_named_view(camera_angles(extrinsic)[0])
                    # the angles once; the fitted framing from the same winner, as
                    # estimate_view's default fits it
                    boxed = estimate_view(
                        points, framed_mask, prior=prior, hint=hint, refine_framing=False
                    )
                camera, iou = fit_framing(points, boxed.camera.extrinsic, framed_mask)
                fitted = boxed._replace(camera=camera, iou=iou)
                for refine, estimate in ((True, fitted), (False, boxed)):
                    figures = camera_errors(estimate, extrinsic, intrinsic, points, surface)
                    rows[camera_kind, refine].append(figures)
                    entry[_label((camera_kind, refine))] = figures
            per_render.append(entry)
    print(
        f"{args.model} on {args.data} {args.split}: {len(per_render)} renders of {len(ids)}"
        f" shapes ({skipped} with an empty result left out), {time.perf_counter() - start:.0f} s"
    )
    header = ("camera", "framing", "az<=15", "behind", "elev err", "sampling err", "under 5%")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    summary = {}
    for mode in modes:
        s = summarise(rows[mode])
        summary[_label(mode)] = s
        cells = (
            mode[0],
            "refined" if mode[1] else "bounding box",
            f"{s['azimuth_within_15']:.3f}",
            f"{s['from_behind']:.3f}",
            f"{s['elevation_error_median']:.1f}",
            f"{s['sampling_error_median']:.4f}",
            f"{s['sampling_under_5pct']:.3f}",
        )
        print("| " + " | ".join(cells) + " |")
    for camera_kind in dict.fromkeys(cameras):
        refined = np.array([r["sampling_error"] for r in rows[camera_kind, True]])
        boxed = np.array([r["sampling_error"] for r in rows[camera_kind, False]])
        diff = refined - boxed
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        summary[f"{camera_kind}, refined - bounding box"] = {
            "sampling_error_mean": round(float(diff.mean()), 4),
            "standard_error": round(float(se), 4),
        }
        print(
            f"{camera_kind}: sampling error, refined - bounding box, paired mean"
            f" {diff.mean():+.4f} +- {se:.4f} (s.e.); means {refined.mean():.4f} and"
            f" {boxed.mean():.4f}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"summary": summary, "renders": per_render}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
