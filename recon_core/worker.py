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
``device``, ``background`` (where the mask comes from without ``mask``: auto, alpha,
segment or plain), ``result`` (the ``.npz`` to write) and ``save_encoding`` (where to keep
the encoding for later re-extraction). ``output`` "mask" writes only the mask the picture
would be read with, as a PNG, to ``result``. Every job is checked before any work
(`check_job`, `recon_core.request`): unknown fields, wrong types and impossible options are
one-line errors, and a line that is not a job at all gets one too. The result holds
``vertices``, ``faces``, ``colours``, ``points``, ``point_colours`` as asked, and ``note``
(a line to show) when the mesh had to be extracted at a lower iso level than asked (see
`Reconstructor.mesh`).

Progress goes to stdout, one JSON object per line: ``{"stage": ..., "progress": 0-1}``,
then ``{"done": RESULT}`` (for a mask job, with ``mask_source`` and ``mask_warnings``) or
``{"error": "one line"}``; in ``--serve`` mode the same lines
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

__all__ = ["run_job", "check_job", "JobError", "save_encoding", "load_encoding", "main"]

STAGES = ("load model", "encode", "fit silhouette", "extract", "build geometry")

_PATHS = ("model", "image", "encoding", "mask", "result", "save_encoding")
"""Job fields that hold a model name or a file path (text)."""


class JobError(ValueError):
    """A job that cannot run as written; the message is one full sentence."""


def check_job(job: Any, writes_result: bool = True):
    """Check a job before any work: a JSON object with known fields of the right types,
    what to read (``image`` or ``encoding``), where to write (``result``: needed by a mask
    job, and when ``writes_result``, as for every job the worker process runs), and options
    a `recon_core.request.ReconstructionRequest` accepts. Returns that request (None for a
    mask job); raises JobError or RequestError with one line."""
    from recon_core.request import ReconstructionRequest

    if not isinstance(job, dict):
        raise JobError(f"a job must be a JSON object, not {type(job).__name__}")
    known = set(_PATHS) | set(ReconstructionRequest.__dataclass_fields__)
    unknown = sorted(str(k) for k in job if k not in known)
    if unknown:
        raise JobError(
            f"the job has unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    for name in _PATHS:
        if job.get(name) is not None and not isinstance(job[name], str):
            raise JobError(f"the job's {name} must be text, got {job[name]!r}")
    if not job.get("result") and (writes_result or job.get("output") == "mask"):
        raise JobError("the job does not say where to write its result (result: an .npz path)")
    if job.get("output") == "mask":
        if not job.get("image"):
            raise JobError("a mask job needs the picture to read (image: a file path)")
        background = job.get("background") or "auto"
        ReconstructionRequest(background=background)  # checks it
        return None
    if not job.get("image") and not job.get("encoding"):
        raise JobError(
            "the job has no picture to read (image) and no earlier encoding to re-extract "
            "(encoding)"
        )
    return ReconstructionRequest.from_job(job)


def save_encoding(path: str | Path, encoded, model_path: str | Path) -> Path:
    """Keep an encoding (latent code, with a pixel-aligned model's feature map and
    elevation, or fused cloud; and the framed picture) on disk."""
    from recon_core.files import atomic_write_bytes

    arrays: dict[str, Any] = {
        "method": np.array(encoded.method),
        "model": np.array(str(model_path)),
    }
    for key in ("latent", "points", "mask_logit", "features"):
        value = getattr(encoded, key)
        if value is not None:
            arrays[key] = value.detach().cpu().numpy()
    if encoded.elevation is not None:
        arrays["elevation"] = np.array(encoded.elevation)
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
    for key in ("latent", "points", "mask_logit", "features"):
        if key in arrays:
            setattr(encoded, key, torch.as_tensor(arrays[key]))
    if "elevation" in arrays:
        encoded.elevation = float(arrays["elevation"])
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
    models across calls (the add-on's in-process path, whose jobs need no ``result``)."""
    from recon_core.inference import Reconstructor
    from recon_core.picture import read_picture

    report = report or (lambda stage, progress: None)
    request = check_job(job, writes_result=False)
    if request is None:  # only the mask the picture would be read with
        from recon_core.picture import save_mask

        picture = read_picture(job["image"], job.get("mask"), job.get("background") or "auto")
        save_mask(picture.mask, job["result"])
        return {
            "mask_source": np.array(picture.mask_source),
            "mask_warnings": np.array("\n".join(picture.warnings)),
        }
    report("load model", 0.05)
    encoded = None
    model_name = job.get("model")
    if job.get("encoding"):
        encoded, model_name = load_encoding(job["encoding"])
    key = (str(model_name), request.device)
    model = (model_cache or {}).get(key)
    if model is None:
        model = Reconstructor(model_name, request.device)
        if model_cache is not None:
            model_cache[key] = model
    if encoded is None:
        report("encode", 0.25)
        picture = read_picture(job["image"], job.get("mask"), request.background)
        encoded = model.encode_picture(picture)
        if request.fit_silhouette:
            report("fit silhouette", 0.3)
            encoded = model.fit_silhouette(encoded, options=model.options_for(request))
        if job.get("save_encoding"):
            save_encoding(job["save_encoding"], encoded, model.path)
    report("extract", 0.45)
    made = model.reconstruct(encoded, request)  # the request's options, for this job only
    result: dict[str, np.ndarray] = {}
    if made.mesh is not None:
        result.update(vertices=made.mesh.vertices, faces=made.mesh.faces)
        if made.mesh.colours is not None:
            result["colours"] = made.mesh.colours
    if made.points is not None:
        result["points"] = made.points
        if made.point_colours is not None:
            result["point_colours"] = made.point_colours
    if made.view is not None:  # where the colours were seen from, for the user to check
        result["view"] = np.array([made.view.azimuth, made.view.elevation])
        result["view_text"] = np.array(made.view.describe())
    if made.note:
        result["note"] = np.array(made.note)
    report("build geometry", 0.9)
    return result


def _error_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _run_and_report(job: Any, model_cache: dict | None = None) -> bool:
    """Run one job, printing its progress and its done or error line; True when done."""

    def report(stage: str, progress: float) -> None:
        print(json.dumps({"stage": stage, "progress": progress}), flush=True)

    try:
        tick = time.perf_counter()
        check_job(job, writes_result=True)  # where the result goes, before any work
        result = run_job(job, report, model_cache)
        from recon_core.files import atomic_write_bytes

        if job.get("output") != "mask":
            buffer = io.BytesIO()
            np.savez(buffer, **result)
            atomic_write_bytes(job["result"], lambda handle: handle.write(buffer.getvalue()))
    except Exception as exc:  # every failure is one line for the add-on to show
        print(json.dumps({"error": _error_line(exc)}), flush=True)
        return False
    done = {"done": job["result"], "seconds": time.perf_counter() - tick}
    if job.get("output") == "mask":  # the result file is the mask: what it came from here
        done.update({k: str(v) for k, v in result.items()})
    print(json.dumps(done), flush=True)
    return True


def _parse_line(raw: bytes | str) -> Any:
    """One request line -> the job (any JSON value; `check_job` judges it); a JobError
    for bytes that are not UTF-8 or text that is not JSON."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JobError(f"unreadable job: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(raw)
    except RecursionError:
        raise JobError("unreadable job: nested too deeply") from None
    except ValueError as exc:
        raise JobError(f"unreadable job ({_error_line(exc)})") from None


def serve(lines=None) -> int:
    """Run the jobs read from ``lines`` (stdin's bytes), one JSON object per line, in order,
    keeping loaded models between them; every line gets a done or an error line, whatever
    it holds, and the next line is served; returns at the end of input."""
    models: dict = {}
    for raw in sys.stdin.buffer if lines is None else lines:
        if not raw.strip():
            continue
        try:
            job = _parse_line(raw)
        except Exception as exc:
            print(json.dumps({"error": _error_line(exc)}), flush=True)
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
        job = _parse_line(Path(argv[0]).read_bytes())
    except (OSError, JobError) as exc:
        print(json.dumps({"error": f"{argv[0]}: {_error_line(exc)}"}), flush=True)
        return 1
    return 0 if _run_and_report(job) else 1


if __name__ == "__main__":
    sys.exit(main())
