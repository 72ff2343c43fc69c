"""Where reconstructions run: in Blender's own Python when torch is importable there, or in a
worker process (``python -m recon_core.worker``) of Blender's or an external interpreter.

A worker job reports its stages on stdout; `WorkerJob.poll` reads them without blocking, so
a modal operator can show progress and cancel (the process is killed; its result file is
written atomically, so nothing half-written is ever read). Jobs go to one long-lived worker
that keeps the model loaded, so only the first pays for starting Python and torch."""

from __future__ import annotations

import atexit
import functools
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .models_index import BUNDLED

ADDON_DIR = Path(__file__).resolve().parent
_MODEL_CACHE: dict = {}


def package_name() -> str:
    return __package__ or "image_to_3d"


def preferences():
    import bpy

    addon = bpy.context.preferences.addons.get(package_name())
    return addon.preferences if addon else None


def library_dir() -> Path:
    """The folder holding ``recon_core`` (vendored beside the add-on, or the checkout)."""
    for candidate in (ADDON_DIR, ADDON_DIR.parent):
        if (candidate / "recon_core").is_dir():
            return candidate
    return ADDON_DIR


def user_dir(name: str) -> Path:
    """A writable folder of the extension's own (``bpy.utils.extension_path_user``), or a
    temporary one when the add-on runs from a checkout."""
    import bpy

    try:
        return Path(bpy.utils.extension_path_user(package_name(), path=name, create=True))
    except (ValueError, RuntimeError, AttributeError):
        path = Path(tempfile.gettempdir()) / "image_to_3d" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def site_packages() -> Path:
    """Where "Install dependencies" puts torch and friends."""
    return user_dir("site-packages")


def add_site_packages() -> None:
    path = str(site_packages())
    if os.path.isdir(path) and path not in sys.path:
        sys.path.append(path)
        torch_in_blender.cache_clear()


@functools.cache
def torch_in_blender() -> tuple[bool, str]:
    """Whether torch imports in Blender's Python. Cached: the panel asks on every redraw,
    and a failed import searches the whole path each time (`add_site_packages` clears it)."""
    try:
        import torch
    except ImportError:
        return False, "PyTorch is not installed in Blender's Python"
    return True, f"PyTorch {torch.__version__} in Blender's Python"


def backend() -> tuple[str, str]:
    """("inprocess" or "worker", a one-line description of what will run)."""
    prefs = preferences()
    choice = prefs.backend if prefs else "auto"
    external = bpy_abspath(prefs.python_path) if prefs and prefs.python_path else ""
    if choice == "external":
        if not external:
            return "worker", "External Python: no interpreter set in the preferences"
        return "worker", f"External Python: {external}"
    ok, status = torch_in_blender()
    if ok:
        return "inprocess", status
    if choice == "auto" and external:
        return "worker", f"External Python: {external}"
    return "inprocess", status


def bpy_abspath(path: str) -> str:
    import bpy

    return bpy.path.abspath(path) if path else ""


def worker_python() -> str:
    prefs = preferences()
    if prefs and prefs.python_path:
        return bpy_abspath(prefs.python_path)
    return sys.executable


def run_inprocess(job: dict, report=None) -> dict:
    """Run a job in Blender's Python; raises ValueError with a one-line message."""
    add_site_packages()
    os.environ["RECON3D_BUNDLED_MODELS"] = str(BUNDLED)
    try:
        from recon_core.worker import run_job
    except ImportError as exc:
        raise ValueError(f"cannot run here: {exc}") from None
    try:
        return run_job(job, report, _MODEL_CACHE)
    except (ValueError, OSError, RuntimeError) as exc:
        raise ValueError((str(exc).splitlines() or [type(exc).__name__])[0]) from None


class _Process:
    """A worker process and the lines it prints, read by background threads."""

    def __init__(self, arguments: list[str], serve: bool):
        env = dict(os.environ)
        paths = [str(library_dir()), str(site_packages())]
        env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["RECON3D_BUNDLED_MODELS"] = str(BUNDLED)  # the library finds the add-on's models
        python = worker_python()
        if not os.path.isfile(python):
            raise ValueError(f"{python}: no such Python interpreter")
        self.key = (python, env["PYTHONPATH"])
        self.process = subprocess.Popen(
            [python, "-m", "recon_core.worker", *arguments],
            stdin=subprocess.PIPE if serve else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True).start()

    def _read(self, stream, is_stdout: bool) -> None:
        for line in stream:
            if is_stdout:
                self.lines.put(line)
            else:
                self.stderr.append(line.rstrip())
                del self.stderr[:-50]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait()


_SERVER: _Process | None = None
"""The long-lived worker (``--serve``): it keeps models loaded, so only the first job pays
for importing torch and loading the model."""
_SERVER_BUSY = False


def _server() -> _Process | None:
    """The idle long-lived worker, started if needed; None while it runs another job."""
    global _SERVER
    if _SERVER_BUSY and _SERVER is not None and _SERVER.alive():
        return None
    wanted = worker_python()
    if _SERVER is not None and (not _SERVER.alive() or _SERVER.key[0] != wanted):
        _SERVER.stop()
        _SERVER = None
    if _SERVER is None:
        _SERVER = _Process(["--serve"], serve=True)
    return _SERVER


def shutdown() -> None:
    """Stop the long-lived worker (the add-on's unregister, Blender's exit)."""
    global _SERVER, _SERVER_BUSY
    if _SERVER is not None:
        if _SERVER.process.stdin:
            try:
                _SERVER.process.stdin.close()
                _SERVER.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _SERVER.stop()
    _SERVER, _SERVER_BUSY = None, False


atexit.register(shutdown)


class WorkerJob:
    """A job in a worker process: the long-lived one when it is free, else a process of its
    own. Cancelling kills the process that runs it."""

    def __init__(self, job: dict):
        global _SERVER_BUSY
        folder = Path(tempfile.mkdtemp(prefix="image_to_3d_"))
        self.job = dict(job)
        self.job.setdefault("result", str(folder / "result.npz"))
        self.stage, self.progress, self.error, self.done = "starting", 0.0, None, False
        server = _server()
        if server is not None:
            try:
                server.process.stdin.write(json.dumps(self.job) + "\n")
                server.process.stdin.flush()
            except OSError:
                server.stop()  # it died in between: a fresh one takes the job
                server = _server()
                server.process.stdin.write(json.dumps(self.job) + "\n")
                server.process.stdin.flush()
            self.worker, self.shared = server, True
            _SERVER_BUSY = True
        else:
            job_path = folder / "job.json"
            job_path.write_text(json.dumps(self.job), "utf-8")
            self.worker, self.shared = _Process([str(job_path)], serve=False), False
        self.finished = False

    def poll(self) -> bool:
        """Update stage/progress; True once the job has finished (done or error)."""
        if self.finished:
            return True
        while not (self.done or self.error):
            try:
                line = self.worker.lines.get_nowait()
            except queue.Empty:
                break
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "stage" in message:
                self.stage, self.progress = message["stage"], float(message["progress"])
            elif "error" in message:
                self.error = message["error"]
            elif "done" in message:
                self.done, self.message = True, message
        if not (self.done or self.error):
            if self.worker.alive() or self.worker.lines.qsize():
                return False  # still running, or lines left to read on the next poll
            tail = [line for line in self.worker.stderr if line.strip()]
            code = self.worker.process.returncode
            self.error = tail[-1] if tail else f"the worker stopped (exit {code})"
        self._release()
        return True

    def _release(self) -> None:
        global _SERVER_BUSY
        if not self.finished:
            self.finished = True
            if self.shared:
                _SERVER_BUSY = False

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll():
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("recon_core.worker", timeout)
            time.sleep(0.02)

    def cancel(self) -> None:
        self.worker.stop()
        if self.shared:
            shutdown()
        self._release()

    def result(self) -> dict:
        import numpy as np

        if self.job.get("output") == "mask":  # the result file is the mask picture
            keys = ("mask_source", "mask_warnings")
            return {k: self.message[k] for k in keys if k in self.message}
        with np.load(self.job["result"]) as data:
            return {k: data[k] for k in data.files}


def run(job: dict) -> dict:
    """Run a job to the end with the active backend (scripts and background mode)."""
    kind, _ = backend()
    if kind == "inprocess":
        return run_inprocess(job)
    worker = WorkerJob(job)
    worker.wait()
    if worker.error:
        raise ValueError(worker.error)
    return worker.result()
