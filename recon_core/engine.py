"""The training loop shared by both methods.

One `Trainer` runs a multi-stage schedule on CPU, CUDA (bf16 autocast) or MPS, single
process or under ``torchrun`` (DistributedDataParallel, NCCL on GPUs, gloo on CPU; rank 0
logs and checkpoints). Every sample is a pure function of (seed, step, shape index) and the
batch order of (seed, epoch), so a run resumed from its last checkpoint reaches the same
weights as an uninterrupted one.

Run folder::

    RUN/config.json          the resolved config
    RUN/last.safetensors     training checkpoint (weights, optimizer, step), atomic
    RUN/model.safetensors    the final model (weights and metadata only)
    RUN/scalars.csv          step, stage, lr, loss terms, samples/s
    RUN/events.*             the same scalars for TensorBoard
    RUN/previews/*.png       input | prediction | truth for a few validation shapes
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from recon_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from recon_core.config import StageConfig, TrainConfig, config_json, from_dict
from recon_core.data import PreparedDataset, read_index
from recon_core.device import select_device
from recon_core.feature_cache import BackboneCache
from recon_core.files import atomic_write_bytes, remove_stale_temporaries
from recon_core.methods import METHODS

__all__ = [
    "Trainer",
    "StepSampler",
    "TrainingError",
    "weights_checksum",
    "config_from_run",
    "preview_batch",
    "learning_rate",
]


class TrainingError(RuntimeError):
    """A run that cannot start or continue (bad data, mismatched checkpoint...)."""


def _without_step_counts(config: TrainConfig) -> str:
    data = json.loads(config_json(config))
    for stage in data["stages"]:
        stage.pop("steps")
    return json.dumps(data, sort_keys=True)


class StepSampler:
    """Batches of (shape index, step) pairs for steps ``start .. total``.

    Epoch e is a permutation of the dataset seeded by (seed, e); step s takes the s-th
    slice of ``batch * world`` indices (cycling the permutation when the dataset is smaller
    than a global batch), and rank r keeps its own ``batch`` of them."""

    def __init__(
        self,
        length: int,
        batch: int,
        seed: int,
        start: int,
        total: int,
        rank: int = 0,
        world: int = 1,
    ):
        if length == 0:
            raise TrainingError("the training split is empty")
        self.length, self.batch, self.seed = length, batch, seed
        self.start, self.total, self.rank, self.world = start, total, rank, world
        self.per_step = batch * world
        self.steps_per_epoch = max(1, length // self.per_step)

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def indices(self, step: int) -> list[int]:
        epoch, position = divmod(step, self.steps_per_epoch)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.length, generator=generator)
        reps = math.ceil(self.per_step * (position + 1) / self.length)
        order = order.repeat(reps)
        chunk = order[position * self.per_step : (position + 1) * self.per_step]
        return chunk[self.rank * self.batch : (self.rank + 1) * self.batch].tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.total):
            yield [(i, step) for i in self.indices(step)]


def _stage_at(config: TrainConfig, step: int) -> tuple[int, int]:
    """(stage index, step within the stage) of a global step."""
    for k, stage in enumerate(config.stages):
        if step < stage.steps:
            return k, step
        step -= stage.steps
    return len(config.stages) - 1, config.stages[-1].steps


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up at the start of each stage, then constant or cosine decay to 5%."""
    k, local = _stage_at(config, step)
    stage, optim = config.stages[k], config.optim
    peak = optim.lr * stage.lr_scale
    warmup = min(optim.warmup_steps, max(1, stage.steps))
    if local < warmup:
        return peak * (local + 1) / warmup
    if optim.schedule == "constant" or stage.steps <= warmup:
        return peak
    progress = (local - warmup) / max(1, stage.steps - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _train_mode(model: torch.nn.Module, network: torch.nn.Module, stage: StageConfig) -> None:
    """Training mode (``model``, which may wrap ``network``), with BatchNorm layers and the
    stage's frozen parts of ``network`` in inference mode where the stage says so."""
    model.train()
    if stage.frozen_batchnorm:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    for name in stage.frozen:
        network.get_submodule(name).eval()


def _freeze(network: torch.nn.Module, stage: StageConfig) -> None:
    """Gradients for every part of ``network`` but the stage's frozen ones (stage start)."""
    network.requires_grad_(True)
    for name in stage.frozen:
        network.get_submodule(name).requires_grad_(False)


def _check_resume_step(path: Path, step: int, config: TrainConfig) -> None:
    """A resumed run must have steps left in its schedule: a checkpoint at or past the end
    (a hand-made or foreign file, or a schedule shortened below it) would write a model
    without training it."""
    if not 0 <= step < config.total_steps:
        raise TrainingError(
            f"{path}: the run is at step {step}, and the schedule has {config.total_steps} "
            "steps: nothing left to train (lengthen a stage with --set stages.N.steps=...)"
        )


def _check_frozen(config: TrainConfig, network: torch.nn.Module, distributed: bool) -> None:
    """Each stage's frozen parts name parts of the network, top-level (``encoder``) or
    nested (``encoder.backbone``); one process only."""
    parts = [name for name, _ in network.named_children()]
    nested = {name for name, _ in network.named_modules() if name}
    for k, stage in enumerate(config.stages):
        unknown = sorted(set(stage.frozen) - nested)
        if unknown:
            raise TrainingError(
                f"stage {k} ({stage.name}): frozen names {unknown}, which the "
                f"{config.method} network does not have; its parts are {parts}"
            )
        if stage.frozen and distributed:
            raise TrainingError(f"stage {k} ({stage.name}): frozen parts train on one process only")


def _to_device(batch: dict, device: torch.device) -> dict:
    non_blocking = device.type == "cuda"
    return {
        k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v
        for k, v in batch.items()
    }


def preview_batch(dataset: PreparedDataset, device: torch.device, count: int = 4) -> dict:
    """The first ``count`` shapes of ``dataset`` (draw 0) as one batch on ``device``: what
    a method's ``preview`` draws, in training previews and evaluation reports alike."""
    batch = [dataset[i, 0] for i in range(min(count, len(dataset)))]
    return _to_device(torch.utils.data.default_collate(batch), device)


class Trainer:
    """Train ``config`` on the prepared dataset at ``data`` into the run folder ``out``."""

    def __init__(
        self,
        config: TrainConfig,
        data: str | Path,
        out: str | Path,
        device: str = "auto",
        resume: bool = False,
        progress: bool = True,
        init: str | Path | None = None,
        init_fresh: tuple[str, ...] = (),
    ):
        self.out = Path(out)
        self.data_root = Path(data)
        self.progress = progress
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.device = select_device(device)
        if self.distributed and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.start_step = 0
        self.resume_state = None
        if resume:
            config = self._load_resume(config)
        elif (self.out / "last.safetensors").exists():
            raise TrainingError(
                f"{self.out} already holds a run; pass --resume to continue "
                "it, or choose another folder"
            )
        self.config = config
        self.method = METHODS[config.method](config)
        self.index = read_index(self.data_root)
        self._check_data()
        torch.manual_seed(config.seed)
        model = self.method.build_model(pretrained=True).to(self.device)
        _check_frozen(config, model, self.distributed)
        self.model = model
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay
        )
        if init_fresh and init is None:
            raise TrainingError("--init-fresh needs --init: the model the rest comes from")
        if init is not None and self.resume_state is None:
            self._load_init(init, config, tuple(init_fresh))
        if self.resume_state is not None:
            model.load_state_dict(self.resume_state.model_state)
            self.optimizer.load_state_dict(self.resume_state.optim_state)
            if "torch_cpu" in self.resume_state.rng_state:
                torch.set_rng_state(self.resume_state.rng_state["torch_cpu"])
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=self.method.partial_stages
            )
        self.network = model
        categories = list(config.data.categories) or None
        self.train_set = PreparedDataset(
            self.data_root,
            list(config.data.splits),
            config.method,
            self.method.sample_settings(),
            config.seed,
            categories,
        )
        self.categories = self.train_set.categories
        if config.data.cache_backbone:
            backbone, stride = self.method.cacheable_backbone(self.network)
            cache = BackboneCache.open_or_build(
                self.out / "backbone-cache",
                self.train_set,
                backbone,
                stride,
                self.device,
                progress=progress and self.rank == 0,
            )
            self.train_set.use_backbone_cache(cache)

    # -- set-up ---------------------------------------------------------------------------
    def _load_init(
        self, init: str | Path, config: TrainConfig, fresh: tuple[str, ...] = ()
    ) -> None:
        """Start from a trained model's weights (a bundled name or a checkpoint path) with a
        fresh optimizer: fine-tuning. Its model settings must be this config's, unless the
        parts named in ``fresh`` (top-level modules, e.g. ``encoder``) start anew: then every
        other weight must match in name and shape, and those parts may differ (a wider image
        encoder on a trained decoder)."""
        from recon_core.registry import resolve_model

        try:
            path = resolve_model(str(init))
            state = load_checkpoint(path)
        except (CheckpointError, ValueError, OSError) as exc:
            raise TrainingError(str(exc)) from exc
        own = self.model.state_dict()
        modules = {k.split(".", 1)[0] for k in own}
        unknown = sorted(set(fresh) - modules)
        if unknown:
            raise TrainingError(
                f"--init-fresh {unknown[0]}: no such part; this model has "
                + ", ".join(sorted(modules))
            )
        if state.config.method != config.method or (
            not fresh and state.config.model != config.model
        ):
            raise TrainingError(
                f"{path}: its model is not this config's ({state.config.method} "
                f"{state.config.model}); start from a model trained with the same preset"
            )

        def kept(key: str) -> bool:
            return key.split(".", 1)[0] not in fresh

        # IM-NET's shape encoder exists only when some stage trains through it: an end-to-end
        # fine-tune of a two-stage model drops it, a two-stage run from another starts it fresh
        weights = {k: v.float() for k, v in state.model_state.items() if kept(k)}
        for key, value in weights.items():
            if key in own and own[key].shape != value.shape:
                raise TrainingError(
                    f"{path}: {key} is {tuple(value.shape)} there, {tuple(own[key].shape)} "
                    "here; start that part fresh (--init-fresh) or keep its settings"
                )
        missing, unexpected = self.model.load_state_dict(weights, strict=False)
        mismatched = [
            k for k in missing + unexpected if kept(k) and not k.startswith("shape_encoder.")
        ]
        if mismatched:
            raise TrainingError(f"{path}: weights do not match its config ({mismatched[0]})")
        if self.rank == 0:
            print(
                f"starting from the weights of {path}"
                + (f" ({', '.join(fresh)} fresh)" if fresh else ""),
                file=sys.stderr,
            )

    def _load_resume(self, config: TrainConfig) -> TrainConfig:
        path = self.out / "last.safetensors"
        if not path.exists():
            raise TrainingError(f"{path}: nothing to resume from")
        try:
            state = load_checkpoint(path, with_training_state=True)
        except CheckpointError as exc:
            raise TrainingError(str(exc)) from exc
        step = int(state.info["step"])
        if config_json(state.config) != config_json(config):
            if _without_step_counts(state.config) != _without_step_counts(config):
                raise TrainingError(
                    f"{path}: the run was started with another config; resume without "
                    "--preset/--set (stage step counts aside), or start a new run folder"
                )
            _check_resume_step(path, step, config)
            # Lengthening or shortening stages is allowed: the schedule follows the new counts.
            if self.rank == 0:
                old, new = [s.steps for s in state.config.stages], [s.steps for s in config.stages]
                print(f"resuming at step {step} with stage lengths {old} -> {new}", file=sys.stderr)
            self.resume_state = state
            self.start_step = step
            return config
        _check_resume_step(path, step, state.config)
        self.resume_state = state
        self.start_step = step
        return state.config

    def _check_data(self) -> None:
        fixed = self.method.info().get("fixed_views")
        data_fixed = self.index.get("fixed_views", {})
        if fixed is not None:
            same = (
                data_fixed.get("count") == fixed["count"]
                and data_fixed.get("size") == fixed["size"]
                and np.allclose(data_fixed.get("extrinsics"), fixed["extrinsics"], atol=1e-6)
            )
            if not same:
                raise TrainingError(
                    f"{self.data_root}: the dataset's fixed views ({data_fixed.get('count')} "
                    f"at {data_fixed.get('size')}px) differ from the model's "
                    f"({fixed['count']} at {fixed['size']}px)"
                )

        if self.method.sample_settings().voxels:
            resolution = self.index.get("settings", {}).get("occupancy", {}).get("voxel_resolution")
            if resolution != 64:
                raise TrainingError(
                    f"{self.data_root}: the two-stage route's shape encoder takes 64^3 voxel "
                    f"grids; this dataset has {resolution}^3"
                )

    def data_summary(self) -> dict[str, Any]:
        summary = self.index.get("summary", {})
        return {
            "dataset": str(self.data_root),
            "train_records": len(self.train_set),
            "categories": summary.get("categories"),
            "sources": summary.get("sources"),
            "licences": summary.get("licences"),
        }

    # -- checkpoints ---------------------------------------------------------------------
    def _info(self, step: int, metrics: dict[str, float]) -> dict[str, Any]:
        info = {
            "step": step,
            "categories": self.categories,
            "data": self.data_summary(),
            "metrics": metrics,
        }
        info.update(self.method.info())
        return info

    def save(self, step: int, metrics: dict[str, float], final: bool = False) -> None:
        if self.rank != 0:
            return
        save_checkpoint(
            self.out / "last.safetensors",
            self.config,
            self.network.state_dict(),
            self._info(step, metrics),
            optim_state=self.optimizer.state_dict(),
            rng_state={"torch_cpu": torch.get_rng_state()},
        )
        if final:
            save_checkpoint(
                self.out / "model.safetensors",
                self.config,
                self.network.state_dict(),
                self._info(step, metrics),
            )

    # -- logging --------------------------------------------------------------------------
    def _open_logs(self):
        self.out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(json.loads(config_json(self.config)), indent=1).encode("utf-8")
        atomic_write_bytes(self.out / "config.json", lambda handle: handle.write(text))
        from tensorboardX import SummaryWriter

        remove_stale_temporaries(self.out)
        for stale in self.out.glob("events.out.tfevents.*"):
            if stale.stat().st_size == 0:  # left by a run killed before its first scalar
                stale.unlink(missing_ok=True)
        self.writer = SummaryWriter(str(self.out))
        csv_path = self.out / "scalars.csv"
        fields = ["step", "stage", "lr", "loss", *self.method.loss_terms, "samples_per_s"]
        if csv_path.exists() and self.start_step > 0:  # keep rows up to the resume point
            # a row's step counts the steps done when it was written, so the checkpoint's
            # own step is the last row it had seen
            with csv_path.open(newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= self.start_step]
        else:
            rows = []
        self.csv_file = csv_path.open("w", newline="")
        self.csv = csv.DictWriter(self.csv_file, fieldnames=fields)
        self.csv.writeheader()
        self.csv.writerows(rows)

    def _log(
        self, step: int, stage: str, lr: float, terms: dict[str, float], total: float, rate: float
    ) -> None:
        row = {
            "step": step,
            "stage": stage,
            "lr": f"{lr:.6g}",
            "loss": f"{total:.6g}",
            "samples_per_s": f"{rate:.2f}",
        }
        row.update({k: f"{v:.6g}" for k, v in terms.items()})
        self.csv.writerow(row)
        self.csv_file.flush()
        self.writer.add_scalar("train/loss", total, step)
        self.writer.add_scalar("train/lr", lr, step)
        self.writer.add_scalar("train/samples_per_s", rate, step)
        for k, v in terms.items():
            self.writer.add_scalar(f"train/{k}", v, step)

    def preview(self, step: int) -> Path | None:
        """Write a preview PNG of a few validation shapes (training shapes if none)."""
        if self.rank != 0:
            return None
        from PIL import Image

        settings = self.method.sample_settings().without_augmentation()
        for split in ("val", "train"):
            dataset = PreparedDataset(self.data_root, split, "all", settings, self.config.seed)
            if len(dataset):
                break
        batch = preview_batch(dataset, self.device)
        was_training = self.network.training
        self.network.eval()
        with torch.no_grad():
            image = self.method.preview(self.network, batch)
        self.network.train(was_training)
        path = self.out / "previews" / f"step_{step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        self.writer.add_image("preview", image, step, dataformats="HWC")
        return path

    def _check_replicas(self) -> None:
        """All ranks must end with the same weights; rank 0 records the checksums. DDP keeps
        parameters in step and takes buffers (BatchNorm statistics) from rank 0 at every
        forward; after the last step they are taken from rank 0 once more."""
        for buffer in self.network.buffers():
            dist.broadcast(buffer, 0)
        local = weights_checksum(self.network)
        gathered: list[str] = [""] * self.world
        dist.all_gather_object(gathered, local)
        if self.rank == 0:
            text = json.dumps({"checksums": gathered}, indent=1).encode("utf-8")
            atomic_write_bytes(self.out / "replicas.json", lambda handle: handle.write(text))
        if len(set(gathered)) != 1:
            raise TrainingError(f"ranks ended with different weights: {gathered}")

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        config = self.config
        total = config.total_steps
        if self.rank == 0:
            self._open_logs()
        sampler = StepSampler(
            len(self.train_set),
            config.data.batch_size,
            config.seed,
            self.start_step,
            total,
            self.rank,
            self.world,
        )
        loader = torch.utils.data.DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=config.data.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        autocast = self.device.type == "cuda" and config.amp
        bar = None
        if self.rank == 0 and self.progress:
            from tqdm import tqdm

            bar = tqdm(
                total=total,
                initial=self.start_step,
                desc="training",
                unit="step",
                dynamic_ncols=True,
            )
        step, last_terms, tick, seen = self.start_step, {}, time.perf_counter(), 0
        current = None
        for batch in loader:
            k, _ = _stage_at(config, step)
            stage = config.stages[k]
            if k != current:
                _freeze(self.network, stage)
                current = k
            _train_mode(self.model, self.network, stage)
            lr = learning_rate(config, step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            batch = _to_device(batch, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
                terms = self.method.losses(self.model, batch, stage.losses)
                loss = sum(stage.losses.get(name, 0.0) * value for name, value in terms.items())
            if not torch.isfinite(loss):
                raise TrainingError(f"step {step}: loss is {loss.item()} ({stage.name})")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.optim.grad_clip)
            self.optimizer.step()
            step += 1
            seen += len(batch["image"]) * self.world
            last_terms = {name: float(value.detach()) for name, value in terms.items()}
            last_terms["loss"] = float(loss.detach())
            if self.rank == 0:
                if step % config.log_every == 0 or step == total:
                    now = time.perf_counter()
                    rate = seen / max(now - tick, 1e-9)
                    tick, seen = now, 0
                    terms_only = {n: last_terms[n] for n in terms}
                    self._log(step, stage.name, lr, terms_only, last_terms["loss"], rate)
                if bar is not None:
                    bar.set_postfix(stage=stage.name, loss=f"{last_terms['loss']:.4f}")
                    bar.update(1)
                if config.preview_every and step % config.preview_every == 0:
                    self.preview(step)
            if step % config.checkpoint_every == 0 and step < total:
                self.save(step, {})
        if bar is not None:
            bar.close()
        metrics = {f"train_{k}": v for k, v in last_terms.items()}
        if self.distributed:
            self._check_replicas()
        if self.rank == 0:
            self.preview(step)
            self.save(step, metrics, final=True)
            self.writer.close()
            self.csv_file.close()
        if self.distributed:
            dist.barrier()
        return metrics


def weights_checksum(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers, in state-dict order."""
    import hashlib

    digest = hashlib.sha256()
    for name, value in module.state_dict().items():
        digest.update(name.encode("utf-8"))
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def config_from_run(out: str | Path) -> TrainConfig:
    """The config a run folder was started with."""
    path = Path(out) / "config.json"
    try:
        return from_dict(json.loads(path.read_text("utf-8")), str(path))
    except FileNotFoundError as exc:
        raise TrainingError(f"{path}: no run to resume here") from exc
