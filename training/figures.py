"""Figures for the documentation, made from the bundled models.

    python -m training.figures resolutions --picture examples/sofa.png --out docs/resolutions.png

``resolutions``: the picture, then the implicit model's mesh extracted at 32^3, 64^3, 128^3
and 256^3 from one latent code (the encoder runs once), each rendered from the same
viewpoint with its face count.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["resolutions", "main"]


def resolutions(
    picture_path: Path, model: str = "implicit", sizes: Iterable[int] = (32, 64, 128, 256)
) -> np.ndarray:
    """One row: the picture, then the mesh of one latent code at each resolution."""
    from PIL import Image, ImageDraw

    from recon_core.inference import Reconstructor
    from recon_core.picture import read_picture
    from recon_core.preview import preview_camera, render_splats, sample_mesh

    reconstructor = Reconstructor(model, "cpu")
    encoded = reconstructor.encode_picture(read_picture(picture_path))
    size = 256
    tiles = [Image.fromarray(encoded.framed).convert("RGBA")]
    tiles[0] = Image.alpha_composite(Image.new("RGBA", tiles[0].size, "white"), tiles[0])
    tiles[0] = np.asarray(tiles[0].convert("RGB").resize((size, size)))
    camera = preview_camera(30.0, 20.0, size)
    for resolution in sizes:
        mesh = reconstructor.coloured_mesh(encoded, resolution)
        points, normals, colours = sample_mesh(mesh.vertices, mesh.faces, mesh.colours, 120_000)
        image = Image.fromarray(render_splats(points, camera, colours, normals, radius=1))
        ImageDraw.Draw(image).text((6, 6), f"{resolution}^3: {len(mesh.faces)} faces", "black")
        tiles.append(np.asarray(image))
    return np.concatenate(tiles, axis=1)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.figures", description=__doc__)
    parser.add_argument("figure", choices=["resolutions"])
    parser.add_argument("--picture", type=Path, default=Path("examples/sofa.png"))
    parser.add_argument("--model", default="implicit")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(None if argv is None else list(argv))
    from PIL import Image

    try:
        image = resolutions(args.picture, args.model)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
