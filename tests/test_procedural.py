"""Procedural shapes: every part closed and facing outwards, shapes normalised, and the
larger styles the generators offer actually drawn."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.procedural import make_shape
from training.data.procedural.categories import GENERATORS


@pytest.mark.parametrize("category", sorted(GENERATORS))
def test_every_part_is_closed_and_the_shape_normalised(category):
    for seed in range(25):
        parts = GENERATORS[category](np.random.default_rng([7, seed]))
        for part in parts:
            assert part.mesh.is_watertight and part.mesh.volume > 0, (category, seed)
        shape = make_shape(category, seed)
        extent = np.ptp(shape.vertices, axis=0)
        assert extent.max() == pytest.approx(1.0)
        assert np.allclose((shape.vertices.max(0) + shape.vertices.min(0)) / 2, 0, atol=1e-9)


def _heights_and_spans(category: str, seeds: int):
    out = []
    for seed in range(seeds):
        parts = GENERATORS[category](np.random.default_rng(seed))
        bounds = np.array([p.mesh.bounds for p in parts])  # (parts, 2, 3)
        out.append((bounds[:, 0].min(0), bounds[:, 1].max(0), parts))
    return out


def test_l_shaped_sofas_and_bunk_beds_are_drawn():
    sofas = _heights_and_spans("sofa", 60)
    # a chaise runs forward past the deepest sofa body (1.0 m)
    assert any(hi[1] - lo[1] > 1.4 for lo, hi, _ in sofas)
    beds = _heights_and_spans("bed", 80)
    # a bunk's posts rise above the highest headboard (1.4 m)
    assert any(hi[2] > 1.4 for lo, hi, _ in beds)
