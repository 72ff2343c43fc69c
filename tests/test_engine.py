"""The shared training engine: configs, checkpoints, resume exactness, two-process runs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from recon_core import config as cfg
from recon_core.checkpoint import CheckpointError, _config_hash, load_checkpoint, read_metadata
from recon_core.engine import StepSampler, learning_rate
from training import presets, train

REPO = Path(__file__).resolve().parents[1]
SMOKE = ["--set", "data.workers=0", "--no-progress"]


def _weights(path):
    return {k: v for k, v in load_file(str(path)).items() if k.startswith("model/")}


def test_presets_round_trip_and_overrides():
    for name in presets.PRESETS:
        config = presets.preset(name)
        assert cfg.from_dict(cfg.to_dict(config)) == config
    config = cfg.apply_overrides(
        presets.preset("implicit"),
        [
            "optim.lr=0.002",
            "stages.0.steps=7",
            "model.decoder=imnet",
            "amp=false",
            "model.decoder_hidden=[64, 32]",
        ],
    )
    assert config.optim.lr == 0.002 and config.stages[0].steps == 7
    assert config.model.decoder == "imnet" and config.model.decoder_hidden == (64, 32)
    assert config.amp is False
    with pytest.raises(cfg.ConfigError, match="no such setting"):
        cfg.apply_overrides(config, ["optim.learning_rate=1"])
    with pytest.raises(cfg.ConfigError, match="not one of"):
        cfg.apply_overrides(config, ["model.decoder=transformer"])
    with pytest.raises(cfg.ConfigError, match="expected an integer"):
        cfg.apply_overrides(config, ["stages.0.steps=many"])


def test_config_with_missing_or_unknown_keys_is_refused():
    data = cfg.to_dict(presets.preset("pointcloud"))
    del data["model"]["upsample"]
    with pytest.raises(cfg.ConfigError, match=r"config.model: missing key\(s\) upsample"):
        cfg.from_dict(data)
    data = cfg.to_dict(presets.preset("implicit"))
    data["optim"]["momentum"] = 0.9
    with pytest.raises(cfg.ConfigError, match="unknown key"):
        cfg.from_dict(data)


def test_sampler_is_a_function_of_seed_and_step_and_shards_ranks():
    full = StepSampler(10, 4, seed=3, start=0, total=9)
    resumed = StepSampler(10, 4, seed=3, start=5, total=9)
    assert list(full)[5:] == list(resumed)
    ranks = [StepSampler(10, 2, seed=3, start=0, total=4, rank=r, world=2) for r in (0, 1)]
    for step in range(4):
        a, b = ranks[0].indices(step), ranks[1].indices(step)
        assert len(a) == len(b) == 2 and not set(a) & set(b)
    tiny = StepSampler(3, 4, seed=0, start=0, total=2)  # smaller than a batch: cycles
    assert len(tiny.indices(0)) == 4


def test_learning_rate_warms_up_and_decays_per_stage():
    config = presets.preset("pointcloud-smoke")
    lrs = [learning_rate(config, s) for s in range(config.total_steps)]
    assert lrs[0] < lrs[9] == pytest.approx(config.optim.lr)
    assert lrs[149] < 0.1 * config.optim.lr  # end of stage 1 decayed
    assert lrs[150] < lrs[159]  # stage 2 warms up again


def _train(tiny_dataset, out, *extra):
    return train.main(
        [
            "--method",
            "implicit",
            "--preset",
            "implicit-smoke",
            "--data",
            str(tiny_dataset),
            "--out",
            str(out),
            *SMOKE,
            *extra,
        ]
    )


def test_checkpoint_round_trip_and_tampering(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    assert _train(tiny_dataset, out, "--set", "stages.0.steps=3") == 0
    ckpt = load_checkpoint(out / "model.safetensors")
    assert ckpt.config.method == "implicit" and ckpt.info["step"] == 3
    assert ckpt.info["categories"] == ["chair", "lamp", "table"]
    assert ckpt.info["data"]["train_records"] > 0
    from recon_core.methods import METHODS

    model = METHODS["implicit"](ckpt.config).build_model()
    model.load_state_dict(ckpt.model_state)  # strict: every key present
    # an altered config key (that would not change any weight shape) is caught
    tensors = load_file(str(out / "model.safetensors"))
    meta = read_metadata(out / "model.safetensors")
    meta["config"]["model"]["conditioning"] = "concat"
    save_file(tensors, str(tmp_path / "edited.safetensors"), metadata={"recon3d": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(tmp_path / "edited.safetensors")
    # a missing key is named
    meta = read_metadata(out / "model.safetensors")
    del meta["config"]["model"]["latent_dim"]
    save_file(
        tensors, str(tmp_path / "missing.safetensors"), metadata={"recon3d": json.dumps(meta)}
    )
    with pytest.raises(CheckpointError, match="missing key.*latent_dim"):
        load_checkpoint(tmp_path / "missing.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "garbage.safetensors")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nowhere.safetensors")


def test_checkpoint_written_before_an_optional_key_existed_loads(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    assert _train(tiny_dataset, out, "--set", "stages.0.steps=2") == 0
    tensors = load_file(str(out / "model.safetensors"))
    meta = read_metadata(out / "model.safetensors")
    for stage in meta["config"]["stages"]:
        del stage["frozen_batchnorm"]  # as the first checkpoint format wrote them
    meta["config_sha256"] = _config_hash(meta["config"])
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={"recon3d": json.dumps(meta)})
    assert load_checkpoint(old).config.stages[0].frozen_batchnorm is False
    meta["config"]["stages"][0]["steps"] = 5  # and an edit is still caught
    save_file(tensors, str(old), metadata={"recon3d": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(old)


def test_training_writes_logs_previews_and_refuses_to_overwrite(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(tiny_dataset, out, "--set", "stages.0.steps=20", "--set", "log_every=5") == 0
    rows = (out / "scalars.csv").read_text().splitlines()
    assert rows[0].startswith("step,stage,lr,loss,occupancy") and len(rows) == 5
    assert list((out / "previews").glob("*.png"))
    assert list(out.glob("events.out.tfevents.*"))
    assert json.loads((out / "config.json").read_text())["method"] == "implicit"
    assert _train(tiny_dataset, out) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_init_starts_from_another_models_weights_and_refuses_another_model(
    tiny_dataset, tmp_path, capsys
):
    first = tmp_path / "first"
    assert _train(tiny_dataset, first, "--set", "stages.0.steps=5") == 0
    tuned = tmp_path / "tuned"
    one_tiny_step = ["--set", "stages.0.steps=1", "--set", "optim.lr=1e-12"]
    init = ["--init", str(first / "model.safetensors")]
    assert _train(tiny_dataset, tuned, *one_tiny_step, *init) == 0

    def parameters(path):  # batch-norm statistics move in any training step
        return {k: v for k, v in _weights(path).items() if "running_" not in k and "num_b" not in k}

    before, after = parameters(first / "model.safetensors"), parameters(tuned / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k], after[k], atol=1e-8) for k in before)
    fresh = tmp_path / "fresh"
    assert _train(tiny_dataset, fresh, *one_tiny_step) == 0
    fresh_weights = parameters(fresh / "model.safetensors")
    assert not all(torch.allclose(before[k], fresh_weights[k], atol=1e-8) for k in before)
    other = ["--set", "model.latent_dim=24"]
    assert _train(tiny_dataset, tmp_path / "other", *one_tiny_step, *init, *other) == 2
    assert "its model is not this config's" in capsys.readouterr().err


def test_init_fresh_starts_a_wider_encoder_on_the_trained_decoder(tiny_dataset, tmp_path, capsys):
    first = tmp_path / "first"
    assert _train(tiny_dataset, first, "--set", "stages.0.steps=5") == 0
    one_tiny_step = ["--set", "stages.0.steps=1", "--set", "optim.lr=1e-12"]
    init = ["--init", str(first / "model.safetensors")]
    wider = ["--set", "model.encoder_width=12"]  # the smoke preset's is 8
    assert _train(tiny_dataset, tmp_path / "refused", *one_tiny_step, *init, *wider) == 2
    assert "its model is not this config's" in capsys.readouterr().err
    out = tmp_path / "wide"
    assert _train(tiny_dataset, out, *one_tiny_step, *init, *wider, "--init-fresh", "encoder") == 0
    assert "(encoder fresh)" in capsys.readouterr().err
    before, after = _weights(first / "model.safetensors"), _weights(out / "model.safetensors")
    decoder = [k for k in before if k.startswith("model/decoder.")]
    assert decoder and all(torch.allclose(before[k], after[k], atol=1e-8) for k in decoder)
    encoder = [k for k in after if k.startswith("model/encoder.") and after[k].ndim == 4]
    assert encoder and any(before[k].shape != after[k].shape for k in encoder)
    # a part left out of --init-fresh must match; a part that does not exist is named
    latent = ["--set", "model.latent_dim=24", "--init-fresh", "encoder"]
    assert _train(tiny_dataset, tmp_path / "latent", *one_tiny_step, *init, *latent) == 2
    assert "start that part fresh (--init-fresh)" in capsys.readouterr().err
    nothing = ["--init-fresh", "nothing"]
    assert _train(tiny_dataset, tmp_path / "nothing", *one_tiny_step, *init, *nothing) == 2
    assert "--init-fresh nothing: no such part; this model has decoder, encoder" in (
        capsys.readouterr().err
    )
    assert _train(tiny_dataset, tmp_path / "alone", *one_tiny_step, "--init-fresh", "encoder") == 2
    assert "--init-fresh needs --init" in capsys.readouterr().err


def test_a_frozen_part_keeps_its_weights_and_statistics_while_the_rest_learns(
    tiny_dataset, tmp_path, capsys
):
    first = tmp_path / "first"
    assert _train(tiny_dataset, first, "--set", "stages.0.steps=3") == 0
    init = ["--init", str(first / "model.safetensors"), "--set", "stages.0.steps=3"]
    before = _weights(first / "model.safetensors")
    for frozen, learning in (("decoder", "encoder"), ("encoder", "decoder")):
        out = tmp_path / frozen
        assert _train(tiny_dataset, out, *init, "--set", f'stages.0.frozen=["{frozen}"]') == 0
        after = _weights(out / "model.safetensors")
        kept = [k for k in before if k.startswith(f"model/{frozen}.")]
        assert kept and all(torch.equal(before[k], after[k]) for k in kept), frozen
        if frozen == "encoder":  # its BatchNorm statistics as well as its weights
            assert any(k.endswith("running_mean") for k in kept)
        moved = [k for k in before if k.startswith(f"model/{learning}.") and before[k].ndim > 1]
        assert moved and any(not torch.equal(before[k], after[k]) for k in moved), learning
    code = _train(tiny_dataset, tmp_path / "unknown", *init, "--set", 'stages.0.frozen=["head"]')
    assert code == 2
    assert "frozen names ['head'], which the implicit network does not have" in (
        capsys.readouterr().err
    )


def test_shape_encoder_width_is_its_own_when_set_and_old_configs_still_load():
    from recon_core.methods.implicit import build_implicit_network

    model = cfg.ImplicitModelConfig(latent_dim=16, encoder_width=12, shape_encoder_width=8)
    network = build_implicit_network(model, shape_encoder=True)
    assert network.shape_encoder.blocks[0].out_channels == 8
    assert network.encoder.state_dict()["stem.0.weight"].shape[0] == 12
    default = build_implicit_network(cfg.ImplicitModelConfig(latent_dim=16), shape_encoder=True)
    assert default.shape_encoder.blocks[0].out_channels == 32  # encoder_width
    stored = cfg.to_dict(presets.preset("implicit"))
    del stored["model"]["shape_encoder_width"]  # as checkpoints written before it existed
    assert cfg.from_dict(stored).model.shape_encoder_width == 0


def test_resumed_run_reaches_the_same_weights_bit_for_bit(tiny_dataset, tmp_path):
    steps = ["--set", "stages.0.steps=160", "--set", "checkpoint_every=20"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    base = [
        sys.executable,
        "-m",
        "training.train",
        "--method",
        "implicit",
        "--preset",
        "implicit-smoke",
        "--data",
        str(tiny_dataset),
        *SMOKE,
        *steps,
    ]
    straight = tmp_path / "straight"
    subprocess.run(
        [*base, "--out", str(straight)], cwd=REPO, env=env, check=True, capture_output=True
    )
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [*base, "--out", str(killed)],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        ckpt = killed / "last.safetensors"
        if ckpt.exists() and read_metadata(ckpt)["step"] >= 40:
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "model.safetensors").exists(), "the run finished before the kill"
    stopped_at = read_metadata(killed / "last.safetensors")["step"]
    assert 40 <= stopped_at < 160
    # a run killed before its first scalar leaves an empty TensorBoard file behind
    (killed / "events.out.tfevents.0.killed").write_bytes(b"")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "training.train",
            "--data",
            str(tiny_dataset),
            "--out",
            str(killed),
            "--resume",
            "--no-progress",
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    a, b = _weights(straight / "model.safetensors"), _weights(killed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the log is whole across the resume: every row, the resume step's too, once
    import csv

    def rows(run):
        with (run / "scalars.csv").open(newline="") as handle:
            return [(r["step"], r["loss"]) for r in csv.DictReader(handle)]

    assert rows(killed) == rows(straight)
    assert not [p for p in killed.glob("events.out.tfevents.*") if p.stat().st_size == 0]


def test_two_processes_with_gloo_end_with_identical_weights(tiny_dataset, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "training.train",
            "--method",
            "implicit",
            "--preset",
            "implicit-smoke",
            "--data",
            str(tiny_dataset),
            "--out",
            str(out),
            *SMOKE,
            "--set",
            "stages.0.steps=6",
            "--set",
            "data.batch_size=2",
            "--device",
            "cpu",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # the launcher's summary comes last; a failing rank's own lines come before it
    assert result.returncode == 0, result.stderr[:3000] + "\n...\n" + result.stderr[-1500:]
    checksums = json.loads((out / "replicas.json").read_text())["checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert load_checkpoint(out / "model.safetensors").info["step"] == 6


def test_pointcloud_method_trains_through_both_stages(tiny_dataset, tmp_path):
    out = tmp_path / "pc"
    code = train.main(
        [
            "--method",
            "pointcloud",
            "--preset",
            "pointcloud-smoke",
            "--data",
            str(tiny_dataset),
            "--out",
            str(out),
            *SMOKE,
            "--set",
            "stages.0.steps=3",
            "--set",
            "stages.1.steps=3",
            "--set",
            "log_every=1",
        ]
    )
    assert code == 0
    rows = (out / "scalars.csv").read_text().splitlines()
    assert "fixed views" in rows[1] and "joint" in rows[-1]
    info = load_checkpoint(out / "model.safetensors").info
    assert info["fixed_views"]["count"] == 8


def test_frozen_batchnorm_stage_trains_with_the_running_statistics(tiny_dataset, tmp_path):
    """A stage with frozen BatchNorm changes the weights but not the running statistics."""

    def run(name, *stages):
        out = tmp_path / name
        argv = ["--method", "pointcloud", "--preset", "pointcloud-smoke"]
        argv += ["--data", str(tiny_dataset), "--out", str(out), *SMOKE]
        for setting in stages:
            argv += ["--set", setting]
        assert train.main(argv) == 0
        return _weights(out / "model.safetensors")

    before = run("a", "stages.0.steps=3", "stages.1.steps=0")
    after = run("b", "stages.0.steps=3", "stages.1.steps=3", "stages.1.frozen_batchnorm=true")
    statistics = [k for k in before if k.endswith(("running_mean", "running_var", "tracked"))]
    assert len(statistics) > 10
    for key in statistics:
        assert torch.equal(before[key], after[key]), key
    weights = [k for k in before if k.endswith(".weight")]
    assert all(not torch.equal(before[k], after[k]) for k in weights[:3])


def test_pointcloud_refuses_data_with_other_fixed_views(tiny_dataset, tmp_path, capsys):
    code = train.main(
        [
            "--method",
            "pointcloud",
            "--preset",
            "pointcloud-smoke",
            "--data",
            str(tiny_dataset),
            "--out",
            str(tmp_path / "pc"),
            *SMOKE,
            "--set",
            "model.fixed_views=6",
        ]
    )
    assert code == 2
    assert "fixed views" in capsys.readouterr().err


def test_imnet_two_stage_route_trains_the_autoencoder_then_the_image_encoder(
    tiny_dataset, tmp_path, capsys
):
    from recon_core.data import PreparedDataset, SampleSettings, read_record, unpack_voxels
    from recon_core.inference import Encoded, Reconstructor

    dataset = PreparedDataset(tiny_dataset, "train", "implicit", SampleSettings(voxels=True))
    arrays, meta = read_record(tiny_dataset / dataset.records[0]["file"], ["voxels", "renders"])
    grid = unpack_voxels(arrays["voxels"], meta["voxel_resolution"])
    assert torch.equal(dataset[0]["voxels"][0], torch.from_numpy(grid).float())

    out = tmp_path / "imnet"
    steps = ["--set", "stages.0.steps=6", "--set", "stages.1.steps=6", "--set", "log_every=1"]
    base = ["--method", "implicit", "--data", str(tiny_dataset), *SMOKE]
    common = [*base, *steps]
    assert train.main(["--preset", "implicit-imnet-smoke", "--out", str(out), *common]) == 0
    rows = (out / "scalars.csv").read_text().splitlines()
    header = rows[0].split(",")
    first = dict(zip(header, rows[1].split(","), strict=True))
    last = dict(zip(header, rows[-1].split(","), strict=True))
    assert first["stage"] == "shape autoencoder" and first["autoencoder"] and not first["latent"]
    assert last["stage"] == "image to code" and last["latent"] and not last["autoencoder"]

    # the second stage moves only the image encoder: the decoder and the shape encoder are
    # the autoencoder's
    after_first = tmp_path / "after-first"
    first_only = ["--set", "stages.0.steps=6", "--set", "stages.1.steps=0"]
    argv = ["--preset", "implicit-imnet-smoke", "--out", str(after_first), *common, *first_only]
    assert train.main(argv) == 0
    before, after = _weights(after_first / "model.safetensors"), _weights(out / "model.safetensors")
    assert before.keys() == after.keys()
    for name in before:
        same = torch.equal(before[name], after[name])
        assert same == (not name.startswith("model/encoder.")), name

    # an end-to-end fine-tune of the two-stage model leaves the shape encoder behind
    tuned = tmp_path / "tuned"
    argv = [
        "--preset",
        "implicit-smoke",
        "--set",
        "model.decoder=imnet",
        "--set",
        "stages.0.steps=2",
    ]
    argv += ["--set", "model.decoder_hidden=[64,32]", "--init", str(out / "model.safetensors")]
    assert train.main([*argv, "--out", str(tuned), *base]) == 0
    assert not any("shape_encoder" in k for k in _weights(tuned / "model.safetensors"))

    reconstructor = Reconstructor(out / "model.safetensors", "cpu")
    encoded = reconstructor.encode(arrays["renders"][0])
    assert encoded.latent.shape == (1, 64) and torch.isfinite(encoded.latent).all()

    # the route's bound: the evaluation decodes the shape autoencoder's code of each voxel
    # grid instead of the picture's. A short run's field is nearly flat, so the level is the
    # first shape's median occupancy under its code: that shape then has a surface.
    from training.reports import evaluate as ev

    record = read_record(tiny_dataset / dataset.records[0]["file"])
    points, labels = ev._uniform_samples(*record)
    with torch.no_grad():
        code = reconstructor.model.shape_encoder(torch.from_numpy(grid).float()[None, None])
        field = reconstructor.field(Encoded("implicit", latent=code))
        level = float(torch.sigmoid(field(torch.from_numpy(points).float())).median())
    mesh, _ = reconstructor.mesh(Encoded("implicit", latent=code), 32, iso=level)
    expected = ev._defined_iou(ev._contains(mesh, points), labels)
    model = out / "model.safetensors"
    options = dict(iso=level, lower_iso=False, device="cpu", progress=False)
    codes = ev.evaluate(
        model, tiny_dataset, "train", tmp_path / "c", 32, shape_codes=True, **options
    )
    pictures = ev.evaluate(model, tiny_dataset, "train", tmp_path / "p", 32, **options)
    assert codes["shape_codes"] and not pictures["shape_codes"]
    assert "the shape autoencoder's codes" in (tmp_path / "c" / "report.md").read_text()
    first = codes["per_shape"][0]
    assert first["id"] == dataset.records[0]["id"] and expected > 0
    assert first["iou"] == pytest.approx(expected, abs=1e-9)
    assert first["chamfer_l1"] != pictures["per_shape"][0]["chamfer_l1"]

    # a model without a shape encoder, or a fit on top, is refused in one line
    argv = ["--data", str(tiny_dataset), "--report", str(tmp_path / "r"), "--shape-codes"]
    tuned_model = ["--model", str(tuned / "model.safetensors")]
    assert ev.main([*tuned_model, *argv, "--split", "train"]) == 2
    assert ev.main(["--model", str(model), *argv, "--fit-silhouette", "--view-hint"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "tuned/model.safetensors: --shape-codes needs a two-stage implicit model" in err[-2]
    assert err[-1] == "error: --shape-codes measures the autoencoder's codes: drop --fit-silhouette"
    assert not (tmp_path / "r").exists()


def test_two_stage_route_needs_64_cube_voxels(tiny_dataset, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    index = json.loads((data / "index.json").read_text())
    index["settings"]["occupancy"]["voxel_resolution"] = 32
    (data / "index.json").write_text(json.dumps(index))
    argv = ["--method", "implicit", "--preset", "implicit-imnet-smoke", "--data", str(data)]
    assert train.main([*argv, "--out", str(tmp_path / "run"), *SMOKE]) == 2
    assert "64^3 voxel grids; this dataset has 32^3" in capsys.readouterr().err


def test_nested_parts_can_be_frozen_and_unknown_nested_names_are_refused():
    from recon_core.engine import TrainingError, _check_frozen, _freeze
    from recon_core.methods.implicit import build_implicit_network

    config = presets.preset("implicit-aligned")
    network = build_implicit_network(config.model)
    _check_frozen(config, network, distributed=False)
    _freeze(network, config.stages[0])
    frozen = network.encoder.backbone
    assert not any(p.requires_grad for p in frozen.stem.parameters())
    assert not any(p.requires_grad for p in frozen.blocks[4].parameters())
    assert all(p.requires_grad for p in frozen.blocks[5].parameters())
    assert all(p.requires_grad for p in network.decoder.parameters())
    # the early layers compute no gradients at all: the picture needs none
    image = torch.rand(1, 4, 64, 64)
    maps, _ = frozen.features(image[:, :3])
    assert not maps[8].requires_grad and maps[16].requires_grad
    config.stages[0].frozen = ["encoder.backbone.blocks.99"]
    with pytest.raises(TrainingError, match=r"frozen names \['encoder.backbone.blocks.99'\]"):
        _check_frozen(config, network, distributed=False)
