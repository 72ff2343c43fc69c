"""training.reports.oracle: the nearest training shape to each shape, chosen with the truth in
hand."""

import json

import numpy as np
import pytest
from helpers import octahedron_model

from recon_core.data import read_index, read_record
from recon_core.metrics import surface_metrics
from training.reports import figures, oracle
from training.reports.evaluate import _defined_iou, _uniform_samples
from training.reports.retrieval import SilhouetteIndex


def _dataset(tiny_dataset, folder, test_ids, copy_of=None):
    """``tiny_dataset``'s records, those of ``test_ids`` in the test split and the rest in
    train; with ``copy_of``, that record once more as a test shape of its own."""
    index = read_index(tiny_dataset)
    records = []
    for entry in index["records"]:
        split = "test" if entry["id"] in test_ids else "train"
        records.append(dict(entry, file=str(tiny_dataset / entry["file"]), split=split))
    if copy_of is not None:
        original = next(r for r in records if r["id"] == copy_of)
        records.append(dict(original, id="copy", split="test"))
    folder.mkdir()
    (folder / "index.json").write_text(json.dumps(dict(index, records=records)))
    return folder


def test_a_copy_of_a_training_shape_finds_it_and_scores_perfectly(tiny_dataset, tmp_path):
    first = read_index(tiny_dataset)["records"][0]["id"]
    data = _dataset(tiny_dataset, tmp_path / "data", test_ids=(), copy_of=first)
    metrics = oracle.nearest_training_shapes(
        data, data, "test", tmp_path / "report", candidates=3, progress=False
    )
    for choice in ("by_iou", "by_fscore"):
        (result,) = metrics[choice]["per_shape"]
        assert result["id"] == "copy" and result["retrieved"] == first
        assert result["iou"] == 1.0
        assert result["f_score@0.02"] == 1.0 and result["chamfer_l1"] == 0.0
    assert "Chosen by the highest IoU" in (tmp_path / "report" / "report.md").read_text()


def test_the_choices_equal_a_brute_force_search(tiny_dataset, tmp_path):
    """Every training shape scored in full: the IoU choice (every shape a candidate) and the
    F@2% choice (every surface sample kept) find the maxima."""
    records = read_index(tiny_dataset)["records"]
    held_out = records[0]["id"]
    data = _dataset(tiny_dataset, tmp_path / "data", test_ids=(held_out,))
    metrics = oracle.nearest_training_shapes(
        data,
        data,
        "test",
        tmp_path / "report",
        candidates=len(records),
        points=10**6,
        progress=False,
    )
    arrays, meta = read_record(tiny_dataset / records[0]["file"])
    points, labels = _uniform_samples(arrays, meta)
    index = SilhouetteIndex.__new__(SilhouetteIndex)
    index.root = data
    ious, fscores = [], []
    for entry in records[1:]:
        shape = index.shape(dict(entry, file=str(tiny_dataset / entry["file"])))
        ious.append(_defined_iou(index.inside(shape, points), labels))
        fscores.append(
            surface_metrics(shape["surface_points"], None, arrays["surface_points"], None)[
                "f_score@0.02"
            ]
        )
    (by_iou,) = metrics["by_iou"]["per_shape"]
    (by_fscore,) = metrics["by_fscore"]["per_shape"]
    assert by_iou["iou"] == pytest.approx(max(ious))
    assert by_fscore["f_score@0.02"] == pytest.approx(max(fscores))
    assert max(fscores) < 1.0  # the held-out shape is not among the training shapes
    assert by_iou["retrieved"] == records[1 + int(np.argmax(ious))]["id"]


def test_bad_inputs_are_one_line_errors(tiny_dataset, tmp_path, capsys):
    data = _dataset(tiny_dataset, tmp_path / "data", test_ids=())
    report = tmp_path / "report"
    assert (
        oracle.main(
            [
                "--data",
                str(data),
                "--train-data",
                str(data),
                "--report",
                str(report),
                "--no-progress",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip() == f"error: {data}: no records in the test split"
    everything_test = {r["id"] for r in read_index(tiny_dataset)["records"]}
    held = _dataset(tiny_dataset, tmp_path / "held", test_ids=everything_test)
    assert (
        oracle.main(
            [
                "--data",
                str(held),
                "--train-data",
                str(held),
                "--report",
                str(report),
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err == f"error: {held}: no records in the train split to choose from"
    assert not report.exists()


def test_the_nearest_figure_shows_network_nearest_shape_and_truth(tiny_dataset, tmp_path):
    records = read_index(tiny_dataset)["records"]
    data = _dataset(tiny_dataset, tmp_path / "data", test_ids=(records[0]["id"],))
    oracle.nearest_training_shapes(data, data, "test", tmp_path / "report", progress=False)
    model = octahedron_model(tmp_path / "octahedron.safetensors")
    image = figures.nearest(str(model), data, tmp_path / "report", [records[0]["id"]])
    assert image.shape == (256, 4 * 256, 3)
    for tile in np.split(image, 4, axis=1):
        assert (tile.min(axis=2) < 200).mean() > 0.02  # something drawn on the white
    with pytest.raises(ValueError, match="no shape 'nope'"):
        figures.nearest(str(model), data, tmp_path / "report", ["nope"])


def test_with_variants_a_mirrored_copy_finds_the_training_shape_mirrored(
    tiny_dataset, tmp_path, monkeypatch
):
    """The variants are scored from the base record's samples, mapped: a test shape that is
    a training shape's mirror image finds that shape's mirror variant, scoring perfectly."""
    from recon_core.data import write_record
    from training.data.augment import transform_samples

    first = read_index(tiny_dataset)["records"][0]
    arrays, meta = read_record(tiny_dataset / first["file"])
    mirror = np.diag([-1.0, 1.0, 1.0])
    mirrored = dict(arrays, **transform_samples(arrays, mirror))
    path = write_record(tmp_path / "own", mirrored, dict(meta, id="mirrored"))
    data = _dataset(tiny_dataset, tmp_path / "data", test_ids=())
    index = json.loads((data / "index.json").read_text())
    index["records"].append(dict(first, id="mirrored", file=str(path), split="test"))
    (data / "index.json").write_text(json.dumps(index))
    monkeypatch.setattr(oracle, "shape_variants", lambda *args, **kwargs: [mirror])
    metrics = oracle.nearest_training_shapes(
        data, data, "test", tmp_path / "report", candidates=3, progress=False, variants=1
    )
    for choice in ("by_iou", "by_fscore"):
        (result,) = metrics[choice]["per_shape"]
        assert result["retrieved"] == f"{first['id']}~v1"
        assert result["iou"] == pytest.approx(1.0)
        assert result["f_score@0.02"] == pytest.approx(1.0)
    assert metrics["variants"] == 1
