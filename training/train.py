"""Train a reconstruction model on a prepared dataset.

    python -m training.train --method implicit --data data/procedural --out runs/implicit
    python -m training.train --method pointcloud --data DATA --out RUN --preset pointcloud-smoke
    python -m training.train --method implicit --data DATA --out RUN --set optim.lr=1e-4
    python -m training.train --data DATA --out RUN --resume          # continue a killed run
    python -m training.train --method implicit --preset implicit-bundled --init implicit \
        --data MY_DATA --out runs/my-category                         # fine-tune a bundled model
    torchrun --nproc_per_node 2 -m training.train --method implicit --data DATA --out RUN

Presets (``--preset``, all listed under usage; `training.presets` says what each is): the
method's own default, a ``-smoke`` one for quick checks, the ``-bundled`` ones the add-on
ships, and the variants measured in docs/experiments.md. The resolved config is saved as
RUN/config.json and in every checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from recon_core.config import ConfigError, apply_overrides
from training.presets import PRESETS, preset

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--method",
        choices=("pointcloud", "implicit"),
        help="reconstruction method (not needed with --resume)",
    )
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="named configuration")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. optim.lr=3e-4",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    parser.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this model's weights (a bundled name such as implicit, or a "
        "checkpoint) to fine-tune it, e.g. on your own category; same preset needed",
    )
    parser.add_argument(
        "--init-fresh",
        metavar="PART",
        action="append",
        default=[],
        help="with --init: start this part of the model anew (e.g. encoder), so that its "
        "settings may differ, as for a wider image encoder on a trained decoder",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    args = _parser().parse_args(None if argv is None else list(argv))
    from recon_core.engine import Trainer, TrainingError, config_from_run

    try:
        if args.resume and not args.preset and not args.overrides:
            config = config_from_run(args.out)
            if args.method and args.method != config.method:
                raise ConfigError(f"{args.out} is a {config.method} run, not {args.method}")
        else:
            if not args.method:
                raise ConfigError("--method is needed to start a run")
            name = args.preset or args.method
            config = preset(name)
            if config.method != args.method:
                raise ConfigError(f"preset {name!r} is for {config.method}, not {args.method}")
            config = apply_overrides(config, args.overrides)
        trainer = Trainer(
            config,
            args.data,
            args.out,
            args.device,
            args.resume,
            progress=not args.no_progress,
            init=args.init,
            init_fresh=tuple(args.init_fresh),
        )
        metrics = trainer.fit()
    except (ConfigError, TrainingError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if trainer.rank == 0:
        summary = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"{args.out}/model.safetensors written ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
