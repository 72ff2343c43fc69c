"""The frozen early layers of a pretrained image encoder, run once per training render.

When a training stage keeps a pretrained backbone's early layers frozen (in inference mode,
without gradients), they compute the same feature maps for a render at every step it is
drawn. `BackboneCache` computes them once for every render of the training records and
stores them on disk as computed (float32: the training step stays the same), one memory-mapped
``.npy`` per stride, shaped (records, views, C, h, w).
`recon_core.data.PreparedDataset` then hands each sample the maps of the render it drew
(``backbone_s<stride>`` keys), and the training step starts from them (`cached_maps`): the
same network, without the cost of its largest maps.

A cache belongs to one dataset's records, one input size and the frozen layers' weights;
`BackboneCache.open_or_build` reuses a cache only when all of these match.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from recon_core.data import PreparedDataset, read_record
from recon_core.files import atomic_write_bytes
from recon_core.imaging import network_input

__all__ = ["BackboneCache", "CacheError", "cached_maps", "CACHE_PREFIX"]

CACHE_PREFIX = "backbone_s"
"""Sample keys of cached maps: ``backbone_s8`` holds the stride-8 map."""


class CacheError(ValueError):
    """A backbone cache that does not fit the dataset, or cannot be read."""


def cached_maps(batch: dict) -> dict[int, torch.Tensor] | None:
    """The cached early maps of a batch, by stride (None when the batch has none)."""
    maps = {int(k[len(CACHE_PREFIX) :]): v for k, v in batch.items() if k.startswith(CACHE_PREFIX)}
    return maps or None


def _weights_digest(module: torch.nn.Module, names: list[str]) -> str:
    """A checksum of the named layers' parameters and buffers."""
    digest = hashlib.sha256()
    for name in names:
        for key, tensor in sorted(module.get_submodule(name).state_dict().items()):
            digest.update(f"{name}.{key}".encode())
            digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


class BackboneCache:
    """Early feature maps of every render of a dataset's records (see the module's text)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        try:
            self.meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CacheError(f"{meta_path}: not a backbone cache ({exc})") from exc
        self.strides = [int(s) for s in self.meta["strides"]]
        self._maps: dict[int, np.ndarray] | None = None

    def __getstate__(self):  # data-loader workers open their own memory maps
        return {**self.__dict__, "_maps": None}

    def _open(self) -> dict[int, np.ndarray]:
        if self._maps is None:
            self._maps = {
                s: np.load(self.folder / f"stride{s}.npy", mmap_mode="r") for s in self.strides
            }
        return self._maps

    def maps(self, record: int, view: int) -> dict[str, torch.Tensor]:
        """The cached maps of one render, as sample entries (float32 (C, h, w) each)."""
        return {
            f"{CACHE_PREFIX}{s}": torch.from_numpy(np.array(m[record, view]))
            for s, m in self._open().items()
        }

    def check(self, dataset: PreparedDataset) -> None:
        """Raise `CacheError` unless this cache holds ``dataset``'s records in its order."""
        files = [r["file"] for r in dataset.records]
        if self.meta.get("records") != files:
            raise CacheError(f"{self.folder}: cached for other records than {dataset.root}'s")
        if self.meta.get("input_size") != dataset.settings.image_size:
            raise CacheError(f"{self.folder}: cached at another input size")

    @staticmethod
    def key(dataset: PreparedDataset, backbone: torch.nn.Module, stride: int) -> dict:
        """What a cache must match: the records, the input size, the frozen layers."""
        names = backbone.early_layers(stride)
        return {
            "records": [r["file"] for r in dataset.records],
            "input_size": dataset.settings.image_size,
            "stride": stride,
            "dtype": "float32",
            "weights": _weights_digest(backbone, names),
        }

    @classmethod
    def open_or_build(
        cls,
        folder: str | Path,
        dataset: PreparedDataset,
        backbone: torch.nn.Module,
        stride: int,
        device: torch.device | str = "cpu",
        batch: int = 48,
        progress: bool = False,
    ) -> BackboneCache:
        """The cache in ``folder`` when it matches (`key`); else build it there anew."""
        folder = Path(folder)
        key = cls.key(dataset, backbone, stride)
        if (folder / "meta.json").exists():
            cache = cls(folder)
            if {k: cache.meta.get(k) for k in key} == key:
                return cache
        return cls.build(folder, dataset, backbone, stride, key, device, batch, progress)

    @classmethod
    def build(
        cls,
        folder: Path,
        dataset: PreparedDataset,
        backbone: torch.nn.Module,
        stride: int,
        key: dict,
        device: torch.device | str,
        batch: int,
        progress: bool,
    ) -> BackboneCache:
        from recon_core.models.backbone import picture_input

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").unlink(missing_ok=True)  # no stale key over new maps
        modes = {module: module.training for module in backbone.modules()}
        backbone.eval()
        size = dataset.settings.image_size
        first, _ = read_record(dataset.root / dataset.records[0]["file"], ["renders"])
        views = len(first["renders"])
        jobs = [(i, v) for i in range(len(dataset.records)) for v in range(views)]
        files: dict[int, np.ndarray] = {}
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(jobs), desc="backbone cache", unit="render")
        renders, current = None, -1
        try:
            for start in range(0, len(jobs), batch):
                chunk = jobs[start : start + batch]
                pictures = []
                for i, v in chunk:
                    if i != current:
                        arrays, _ = read_record(
                            dataset.root / dataset.records[i]["file"], ["renders"]
                        )
                        renders, current = arrays["renders"], i
                        if len(renders) != views:
                            raise CacheError(
                                f"{dataset.records[i]['file']}: {len(renders)} renders, "
                                f"the first record has {views}"
                            )
                    pictures.append(network_input(renders[v : v + 1], size))
                image = torch.cat(pictures).to(device)
                with torch.no_grad():
                    maps = backbone.early_features(picture_input(image), stride)
                for s, m in maps.items():
                    if s not in files:
                        shape = (len(dataset.records), views, *m.shape[1:])
                        files[s] = np.lib.format.open_memmap(
                            folder / f"stride{s}.npy.part", "w+", np.float32, shape
                        )
                    out = m.cpu().numpy()
                    for (i, v), one in zip(chunk, out, strict=True):
                        files[s][i, v] = one
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
            for module, training in modes.items():
                module.training = training
        for s, m in files.items():
            m.flush()
            del m
            os.replace(folder / f"stride{s}.npy.part", folder / f"stride{s}.npy")
        files.clear()
        meta = {**key, "strides": sorted(maps), "views": views}
        text = json.dumps(meta).encode()
        atomic_write_bytes(folder / "meta.json", lambda handle: handle.write(text))
        return cls(folder)
