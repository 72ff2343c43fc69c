"""One reconstruction job, runnable in another process: what the Blender add-on uses so
that Blender stays responsive, and so that torch may live in another Python than Blender's.

    python -m recon_core.worker JOB.json
    python -m recon_core.worker --serve      # jobs as JSON lines on stdin, models kept loaded

The job (JSON): ``model``, ``image`` (or ``encoding``: an ``.npz`` saved by an earlier
job, to re-extract without the encoder), ``mask``, ``output`` (mesh, points or both),
``resolution``, ``iso``, ``faces`` (a face budget, 0 or absent for none), ``points``,
``symmetric`` (mirror-symmetric results, see `Reconstructor`), ``view`` (a view hint as
``recon3d reconstruct --view`` takes it; absent, empty or "auto": estimated),
``fit_silhouette`` (implicit models: fit the code to the picture's silhouette, see
`Reconstructor.fit_silhouette`; kept in the saved encoding), ``consistency``,
``device``, ``result`` (the ``.npz`` to write) and ``save_encoding`` (where to keep the
encoding for later re-extraction). The result holds ``vertices``, ``faces``, ``colours``,
``points``, ``point_colours`` as asked, and ``note`` (a line to show) when the mesh had to
be extracted at a lower iso level than asked (see `Reconstructor.mesh`).

Progress goes to stdout, one JSON object per line: ``{"stage": ..., "progress": 0-1}``,
then ``{"done": RESULT}`` or ``{"error": "one line"}``; in ``--serve`` mode the same lines
follow each job in turn. The result and encoding files are
written atomically, so a killed job leaves nothing half-written.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_job", "save_encoding", "load_encoding", "main"]

STAGES = ("load model", "encode", "fit silhouette", "extract", "build geometry")


def save_encoding(path: str | Path, encoded, model_path: str | Path) -> Path:
    """Keep an encoding (latent code or fused cloud, and the framed picture) on disk."""
    from recon_core.data import atomic_write_bytes

    arrays: dict[str, Any] = {
        "method": np.array(encoded.method),
        "model": np.array(str(model_path)),
    }
    for key in ("latent", "points", "mask_logit"):
        value = getattr(encoded, key)
        if value is not None:
            arrays[key] = value.detach().cpu().numpy()
    if encoded.framed is not None:
        arrays["framed"] = encoded.framed
    arrays["fitted"] = np.array(bool(encoded.fitted))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, lambda handle: handle.write(buffer.getvalue()))
    return Path(path)


def load_encoding(path: str | Path):
    """(Encoded, model path) from `save_encoding`'s file."""
    import torch

    from recon_core.inference import Encoded

    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable cached encoding ({exc})") from None
    encoded = Encoded(str(arrays["method"]))
    for key in ("latent", "points", "mask_logit"):
        if key in arrays:
            setattr(encoded, key, torch.as_tensor(arrays[key]))
    encoded.framed = arrays.get("framed")
    encoded.fitted = bool(arrays.get("fitted", False))
    return encoded, str(arrays["model"])


def run_job(
    job: dict[str, Any],
    report: Callable[[str, float], None] | None = None,
    model_cache: dict | None = None,
) -> dict[str, np.ndarray]:
    """Run a job in this process; returns the result arrays (``vertices``, ``faces``,
    ``colours``; ``points``, ``point_colours``; ``view``: the azimuth and elevation the
    colours were seen from, ``view_text`` the same in words). ``model_cache`` keeps loaded
    models across calls (the add-on's in-process path)."""
    from recon_core.colour import parse_view
    from recon_core.inference import Reconstructor
    from recon_core.picture import read_picture
    from recon_core.preview import sample_mesh

    report = report or (lambda stage, progress: None)
    if job.get("output") == "mask":  # only the mask the picture would be read with
        from recon_core.picture import save_mask

        picture = read_picture(job["image"], job.get("mask"))
        save_mask(picture.mask, job["result"])
        return {"mask_source": np.array(picture.mask_source)}
    report("load model", 0.05)
    encoded = None
    model_name = job.get("model")
    if job.get("encoding"):
        encoded, model_name = load_encoding(job["encoding"])
    key = (str(model_name), job.get("device", "auto"))
    model = (model_cache or {}).get(key)
    if model is None:
        model = Reconstructor(model_name, job.get("device", "auto"))
        if model_cache is not None:
            model_cache[key] = model
    model.consistency = job.get("consistency")  # point-cloud models: the silhouette test
    model.symmetric = bool(job.get("symmetric", False))
    view = str(job.get("view") or "auto")
    model.view = None if view == "auto" else parse_view(view)
    if encoded is None:
        report("encode", 0.25)
        picture = read_picture(job["image"], job.get("mask"))
        encoded = model.encode_picture(picture)
        if job.get("fit_silhouette"):
            report("fit silhouette", 0.3)
            encoded = model.fit_silhouette(encoded)
        if job.get("save_encoding"):
            save_encoding(job["save_encoding"], encoded, model.path)
    report("extract", 0.45)
    output = job.get("output", "mesh")
    result: dict[str, np.ndarray] = {}
    mesh = view = None
    iso = float(job.get("iso", 0.5))
    if output in ("mesh", "both"):
        mesh = model.coloured_mesh(
            encoded, int(job.get("resolution", 128)), iso, job.get("faces") or None
        )
        result.update(vertices=mesh.vertices, faces=mesh.faces)
        if mesh.colours is not None:
            result["colours"] = mesh.colours
        view = mesh.view
    if output in ("points", "both"):
        count = job.get("points") or None
        if encoded.method == "pointcloud":
            cloud = model.coloured_points(encoded, count)
            points, colours, view = cloud.points, cloud.colours, cloud.view
        else:
            if "vertices" not in result:
                mesh = model.coloured_mesh(
                    encoded, int(job.get("resolution", 128)), iso
                )  # sampled for points: no face budget
                view = mesh.view
            points, _, colours = sample_mesh(
                mesh.vertices, mesh.faces, mesh.colours, count or 20000
            )
        result["points"] = points
        if colours is not None:
            result["point_colours"] = colours
    if view is not None:  # where the colours were seen from, for the user to check
        result["view"] = np.array([view.azimuth, view.elevation])
        result["view_text"] = np.array(view.describe())
    if mesh is not None and mesh.stats is not None and mesh.stats.iso not in (None, iso):
        result["note"] = np.array(
            f"nothing reached the iso level {iso:g}; the mesh is at {mesh.stats.iso:g} instead"
        )
    report("build geometry", 0.9)
    return result


def _run_and_report(job: dict[str, Any], model_cache: dict | None = None) -> bool:
    """Run one job, printing its progress and its done or error line; True when done."""

    def report(stage: str, progress: float) -> None:
        print(json.dumps({"stage": stage, "progress": progress}), flush=True)

    try:
        tick = time.perf_counter()
        result = run_job(job, report, model_cache)
        from recon_core.data import atomic_write_bytes

        if job.get("output") != "mask":
            buffer = io.BytesIO()
            np.savez(buffer, **result)
            atomic_write_bytes(job["result"], lambda handle: handle.write(buffer.getvalue()))
    except Exception as exc:  # every failure is one line for the add-on to show
        message = (str(exc).splitlines() or [type(exc).__name__])[0]
        print(json.dumps({"error": message}), flush=True)
        return False
    print(json.dumps({"done": job["result"], "seconds": time.perf_counter() - tick}), flush=True)
    return True


def serve(lines=None) -> int:
    """Run the jobs read from ``lines`` (stdin), one JSON object per line, in order, keeping
    loaded models between them; returns at the end of input."""
    models: dict = {}
    for line in sys.stdin if lines is None else lines:
        if not line.strip():
            continue
        try:
            job = json.loads(line)
        except json.JSONDecodeError as exc:
            print(json.dumps({"error": f"unreadable job ({exc})"}), flush=True)
            continue
        _run_and_report(job, models)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--serve"]:
        return serve()
    if len(argv) != 1:
        usage = "usage: python -m recon_core.worker JOB.json | --serve"
        print(json.dumps({"error": usage}), flush=True)
        return 2
    try:
        job = json.loads(Path(argv[0]).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        print(json.dumps({"error": f"{argv[0]}: unreadable job ({exc})"}), flush=True)
        return 1
    return 0 if _run_and_report(job) else 1


if __name__ == "__main__":
    sys.exit(main())
