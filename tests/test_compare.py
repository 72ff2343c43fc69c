"""training.reports.compare: paired comparisons of two evaluations, shape by shape."""

import json
import math

import numpy as np
import pytest

from training.reports import compare


def _report(folder, per_shape, retrieval=None):
    folder.mkdir(parents=True)
    metrics = {"per_shape": per_shape}
    if retrieval is not None:
        metrics["retrieval"] = {"per_shape": retrieval}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def _shapes(ids, rng, undefined_iou=()):
    return [
        {
            "id": i,
            "category": "chair",
            "iou": None if i in undefined_iou else float(rng.uniform(0, 1)),
            "chamfer_l1": float(rng.uniform(0.01, 0.2)),
            "lowered_iso": 0.2,
        }
        for i in ids
    ]


def test_paired_figures_match_numpy_and_pool_the_reports_of_a_side(tmp_path):
    rng = np.random.default_rng(3)
    val, test = [f"v{k}" for k in range(7)], [f"t{k}" for k in range(9)]
    base = _shapes(val + test, rng, undefined_iou={"t2"})
    new = _shapes(val + test + ["extra"], rng)
    base_reports = [_report(tmp_path / "bv", base[:7]), _report(tmp_path / "bt", base[7:])]
    new_reports = [_report(tmp_path / "nv", new[:7]), _report(tmp_path / "nt", new[7:])]
    rows = {
        r.metric: r
        for r in compare.compare(
            compare.load_shapes(base_reports), compare.load_shapes(new_reports)
        )
    }
    assert set(rows) == {"iou", "chamfer_l1"}  # lowered_iso is not a metric
    for metric, left_out in (("iou", {"t2"}), ("chamfer_l1", set())):
        pairs = [
            (b[metric], n[metric])
            for b, n in zip(base, new, strict=False)
            if b["id"] not in left_out
        ]
        a, b = np.array(pairs).T
        row = rows[metric]
        assert row.shapes == len(pairs) == 16 - len(left_out)
        assert row.base == pytest.approx(a.mean()) and row.new == pytest.approx(b.mean())
        assert row.difference == pytest.approx((b - a).mean())
        assert row.standard_error == pytest.approx((b - a).std(ddof=1) / math.sqrt(len(a)))
        better = (b > a) if metric == "iou" else (b < a)  # a distance is better smaller
        assert (row.better, row.worse) == (better.sum(), (~better).sum())
    swapped = compare.compare(compare.load_shapes(new_reports), compare.load_shapes(base_reports))
    for row in swapped:
        assert row.difference == pytest.approx(-rows[row.metric].difference)
        assert (row.better, row.worse) == (rows[row.metric].worse, rows[row.metric].better)


def test_a_model_against_its_retrieval_baseline_and_itself(tiny_dataset, tmp_path, capsys):
    """Through real evaluations of a known shape (an octahedron whatever the picture)."""
    from helpers import octahedron_model

    from training.reports.evaluate import evaluate

    model = octahedron_model(tmp_path / "octahedron.safetensors")
    options = dict(device="cpu", progress=False, retrieval=tiny_dataset)
    evaluate(model, tiny_dataset, "all", tmp_path / "a", 32, **options)
    evaluate(model, tiny_dataset, "all", tmp_path / "b", 32, **options)
    assert compare.main(["--base", str(tmp_path / "a"), "--new", str(tmp_path / "b")]) == 0
    same = capsys.readouterr().out
    assert "| iou | 9 |" in same and "| chamfer_l1 (lower is better) | 9 |" in same
    assert "+0.0000 +- 0.0000 | 0 / 0 |" in same

    assert compare.main(["--base", str(tmp_path / "a"), "--retrieval"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    model_iou = np.mean([r["iou"] for r in metrics["per_shape"]])
    retrieval_iou = np.mean([r["iou"] for r in metrics["retrieval"]["per_shape"]])
    row = next(line for line in out.splitlines() if line.startswith("| iou |"))
    assert f"| {retrieval_iou:.4f} | {model_iou:.4f} | {model_iou - retrieval_iou:+.4f}" in row
    # a real shape of the same categories, retrieved by silhouette, beats a fixed octahedron
    assert retrieval_iou > model_iou


def test_bad_reports_are_one_line_errors_naming_the_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    good = _report(tmp_path / "good", _shapes(["a", "b"], rng))
    other = _report(tmp_path / "other", _shapes(["c", "d"], rng))
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"mean_over_categories": {}}))
    cases = [
        (["--base", str(tmp_path / "missing"), "--new", str(good)], "missing: no such file"),
        (["--base", str(garbled), "--new", str(good)], "garbled.json: not a readable metrics"),
        (["--base", str(flat), "--new", str(good)], "flat.json: has no per-shape results"),
        (["--base", str(good), "--retrieval"], "holds no retrieval baseline"),
        (["--base", str(good), str(good), "--new", str(good)], "shape 'a' is also in"),
        (["--base", str(good), "--new", str(other)], "share no shape"),
    ]
    for argv, message in cases:
        assert compare.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
