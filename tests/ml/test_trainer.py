"""The training loop on CPU at tiny sizes: run files, exact resume, abort, checkpoint retention, sampling, DDP."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from synthesis.gans.trainer import TrainConfig, TrainData, load_checkpoint, sample, train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data() -> TrainData:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(12, 1, 32, 32, generator=g) * 2 - 1
    masks = torch.randint(0, 3, (12, 32, 32), generator=g)
    return TrainData(images, masks, n_classes=3)


def tiny(arch: str, steps: int, **overrides) -> TrainConfig:
    """``steps`` G steps at batch 4; one tick per step, one snapshot at the end unless overridden."""
    base = {"resolution": 32, "img_channels": 1, "n_classes": 3, "base_channels": 4, "z_dim": 8, "batch_size": 4}
    if arch == "stylegan":
        base["map_layers"] = 1
    n_critic = overrides.get("n_critic", TrainConfig.resolve(arch, base).n_critic)
    per_step = 4 * n_critic / 1000  # kimg per G step
    base |= {"kimg": steps * per_step, "tick_kimg": per_step, "snapshot_kimg": steps * per_step}
    base |= {"metric_n": 8, "n_grid": 4, "n_critic": n_critic}
    return TrainConfig.resolve(arch, base | overrides)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_weights(a: dict, b: dict) -> None:
    for net in ("G", "D", "G_ema"):
        assert a[net].keys() == b[net].keys()
        different = [k for k in a[net] if not torch.equal(a[net][k], b[net][k])]
        assert not different, f"{net} differs in {different}"


@pytest.fixture
def deterministic():
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


# -- configuration -----------------------------------------------------------------------------------------------


def test_resolve_fills_the_preset_and_the_auto_values():
    cfg = TrainConfig.resolve("stylegan", {"resolution": 64, "img_channels": 1, "batch_size": 8})
    assert (cfg.loss, cfg.lr_g, cfg.betas, cfg.augment) == ("logistic", 0.0025, (0.0, 0.99), "ada")
    assert cfg.r1_gamma == pytest.approx(0.0002 * 64**2 / 8)
    assert cfg.ema_kimg == pytest.approx(8 * 10 / 32)
    assert cfg.extra["map_layers"] == 8 and cfg.extra["style_mixing"] == 0.9  # model knobs go to extra
    wgan = TrainConfig.resolve("wgan", {"resolution": 32, "img_channels": 3})
    assert (wgan.optimizer, wgan.n_critic, wgan.weight_clip, wgan.betas) == ("rmsprop", 5, 0.01, None)


def test_resolve_rejects_unknown_and_invalid_options():
    with pytest.raises(ValueError, match="unknown training options.*lr_gg"):
        TrainConfig.resolve("dcgan", {"resolution": 32, "img_channels": 1, "lr_gg": 1})
    with pytest.raises(ValueError, match="resolution"):
        TrainConfig.resolve("dcgan", {"img_channels": 1})
    with pytest.raises(ValueError, match="power of two"):
        TrainConfig.resolve("dcgan", {"resolution": 48, "img_channels": 1})
    with pytest.raises(ValueError, match="augment"):
        TrainConfig.resolve("dcgan", {"resolution": 32, "img_channels": 1, "augment": "mixup"})


def test_config_round_trips_through_json():
    cfg = TrainConfig.resolve("spade", {"resolution": 32, "img_channels": 1, "n_classes": 4, "extra": {"num_d": 1}})
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.extra["num_d"] == 1


def test_train_data_validates_and_stores_index_masks():
    onehot = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 32, 32)), 3).permute(0, 3, 1, 2).float()
    data = TrainData(torch.zeros(2, 1, 32, 32), onehot)
    assert data.n_classes == 3 and data.masks.dtype == torch.uint8 and data.masks.shape == (2, 32, 32)
    images, masks = data.batch(torch.tensor([1, 0]), torch.device("cpu"))
    assert torch.equal(masks, onehot[[1, 0]])
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        TrainData(torch.rand(2, 1, 32, 32) * 255)
    with pytest.raises(ValueError, match="labels"):
        TrainData(torch.zeros(2, 1, 32, 32), torch.full((2, 32, 32), 5), n_classes=3)


# -- a run and its files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arch, overrides",
    [
        ("dcgan", {}),
        ("wgan_gp", {"n_critic": 2}),
        # The CUDA-only switches must be harmless no-ops on CPU.
        ("stylegan", {"r1_interval": 2, "pl_interval": 2, "amp": True, "tf32": True, "channels_last": True}),
        ("spade", {"extra": {"num_d": 1, "d_layers": 3}}),
    ],
)
def test_train_writes_stats_grids_checkpoints_and_metrics(arch, overrides, data, tmp_path):
    cfg = tiny(arch, 2, **overrides)
    progress = []
    result = train(cfg, data, tmp_path, progress_fn=lambda cur, total, stats: progress.append((cur, total, stats)))

    assert (result.step, result.aborted) == (2, False)
    assert [p[0] for p in progress] == pytest.approx([cfg.kimg / 2, cfg.kimg]) and progress[-1][1] == cfg.kimg
    stats = lines(tmp_path / "stats.jsonl")
    assert [s["step"] for s in stats] == [1, 2]
    for key in ("kimg", "loss_G", "loss_D", "D_real", "D_fake", "aug_p", "sec_per_kimg", "img_per_s", "cpu_peak_mb"):
        assert stats[-1][key] is not None, key
    if arch == "wgan_gp":
        assert stats[-1]["loss_gp"] > 0
    if arch == "stylegan":
        assert stats[0]["loss_r1"] >= 0 and stats[0]["loss_pl"] >= 0  # both lazy regularisers ran at step 0
    if arch == "spade":
        assert stats[-1]["loss_fm"] > 0

    assert Image.open(tmp_path / "grids" / "reals.png").size[0] > 0
    grid = Image.open(tmp_path / "grids" / "grid-0000002.png")
    assert grid.mode == "RGB" and grid.size[0] >= 2 * 32  # image | overlay tiles
    (metric,) = lines(tmp_path / "metrics.jsonl")
    assert metric["metric"] == "swd" and metric["value"] == metric["swd"] > 0 and metric["n_fake"] == 8
    assert {p.name for p in (tmp_path / "checkpoints").iterdir()} == {"ckpt-0000002.pt", "latest.pt", "best.pt"}
    assert TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == cfg

    ckpt = torch.load(result.checkpoint, weights_only=True)
    for key in ("G", "D", "G_ema", "opt_G", "opt_D", "scaler_G", "scaler_D", "sampler", "rng", "metrics", "augment"):
        assert key in ckpt
    assert ckpt["step"] == 2 and ckpt["cur_nimg"] == round(cfg.kimg * 1000)
    G_ema, loaded_cfg = load_checkpoint(result.checkpoint)
    assert loaded_cfg == cfg and not G_ema.training


# -- exact resume --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arch, overrides",
    [
        ("dcgan", {}),
        # Lazy R1 and path length inside both halves; ADA with p > 0 and an update every D step, so the
        # augmentation generator and the ADA accumulators must resume too; EMA ramp-up; style mixing.
        (
            "stylegan",
            {"r1_interval": 2, "pl_interval": 2, "augment_p": 0.5, "ada_interval": 1, "ada_kimg": 0.1},
        ),
    ],
)
def test_stop_and_resume_equals_straight_training(arch, overrides, data, tmp_path, deterministic):
    cfg = tiny(arch, 4, **overrides, tick_kimg=2 * tiny(arch, 4).tick_kimg)  # ticks every 2 steps
    straight = train(cfg, data, tmp_path / "straight")

    polls = []

    def abort() -> bool:
        polls.append(1)
        return True

    stopped = train(cfg, data, tmp_path / "resumed", abort_fn=abort)
    assert stopped.aborted and stopped.step == 2 and len(polls) == 1  # stopped at the first tick
    assert torch.load(stopped.checkpoint, weights_only=True)["step"] == 2

    resumed = train(cfg, data, tmp_path / "resumed", resume_from=stopped.checkpoint)
    assert (resumed.step, resumed.aborted) == (4, False)
    assert_same_weights(
        torch.load(straight.checkpoint, weights_only=True), torch.load(resumed.checkpoint, weights_only=True)
    )
    assert [s["step"] for s in lines(tmp_path / "resumed" / "stats.jsonl")] == [2, 4]


def test_resume_refuses_a_different_model(data, tmp_path):
    result = train(tiny("dcgan", 1), data, tmp_path)
    with pytest.raises(ValueError, match="base_channels"):
        train(tiny("dcgan", 2, base_channels=8), data, tmp_path, resume_from=result.checkpoint)


# -- checkpoints and sampling ------------------------------------------------------------------------------------


def test_latest_best_and_pruning(data, tmp_path):
    cfg = tiny("dcgan", 4, keep_checkpoints=2)
    cfg.snapshot_kimg = cfg.tick_kimg  # a snapshot every step
    train(cfg, data, tmp_path)
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("ckpt-*.pt")) == ["ckpt-0000003.pt", "ckpt-0000004.pt"]
    assert torch.load(ckpts / "latest.pt", weights_only=True)["step"] == 4
    metrics = lines(tmp_path / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    best = min(metrics, key=lambda m: m["value"])
    best_ckpt = torch.load(ckpts / "best.pt", weights_only=True)
    assert best_ckpt["step"] == best["step"] and best_ckpt["best"]["value"] == best["value"]
    assert len(list((tmp_path / "grids").glob("grid-*.png"))) == 4


def test_feature_metrics_at_snapshots_choose_the_best_checkpoint(data, tmp_path):
    """KID/FID come from a caller's function (the app passes FID-Inception's); the chosen one picks best.pt."""
    seen = []
    kids = iter([0.5, 0.2, 0.3])  # the second snapshot is the best by KID

    def feature_metrics(fakes, reals):
        seen.append((fakes, reals))
        return {"kid": next(kids), "fid": 40.0 + len(seen)}

    cfg = tiny("dcgan", 3, metric="kid", feature_metrics=["kid", "fid"])
    cfg.snapshot_kimg = cfg.tick_kimg
    train(cfg, data, tmp_path, feature_metrics=feature_metrics)
    metrics = lines(tmp_path / "metrics.jsonl")
    assert [(m["metric"], m["value"], m["kid"], m["fid"]) for m in metrics] == [
        ("kid", 0.5, 0.5, 41.0),
        ("kid", 0.2, 0.2, 42.0),
        ("kid", 0.3, 0.3, 43.0),
    ]
    assert all(m["swd"] > 0 for m in metrics)  # SWD is always there
    assert torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)["step"] == 2
    fakes, reals = seen[0]
    assert fakes.shape == reals.shape == (8, 1, 32, 32) and fakes.min() >= -1 and fakes.max() <= 1
    assert all(r is reals for _, r in seen)  # one tensor of reals, so the function may cache its features


def test_feature_metrics_without_a_function_or_misconfigured_are_refused(data, tmp_path):
    with pytest.raises(ValueError, match="FID-Inception weights"):
        train(tiny("dcgan", 1, metric="kid", feature_metrics=["kid"]), data, tmp_path)
    with pytest.raises(ValueError, match="add it to feature_metrics"):
        tiny("dcgan", 1, metric="fid", feature_metrics=["kid"])
    with pytest.raises(ValueError, match="feature_metrics may hold"):
        tiny("dcgan", 1, feature_metrics=["is"])
    assert tiny("dcgan", 1, metric="kid", feature_metrics="kid,fid").feature_metrics == ["kid", "fid"]


def test_sample_is_deterministic_per_seed(data, tmp_path):
    result = train(tiny("stylegan", 1), data, tmp_path)
    G_ema, cfg = load_checkpoint(result.checkpoint)
    images, masks = sample(G_ema, seeds=[3, 7, 11])
    again, masks_again = sample(G_ema, seeds=[3, 7, 11])
    alone, _ = sample(G_ema, seeds=[7], batch_size=1)
    assert images.shape == (3, 1, 32, 32) and images.abs().max() <= 1
    assert masks.shape == (3, 32, 32) and masks.dtype == torch.uint8 and int(masks.max()) < 3
    assert torch.equal(images, again) and torch.equal(masks, masks_again)
    torch.testing.assert_close(alone[0], images[1], rtol=1e-5, atol=1e-5)  # independent of the batch
    assert not torch.allclose(images[0], images[1])
    truncated, _ = sample(G_ema, seeds=[3, 7], psi=0.0)
    assert (truncated[0] - truncated[1]).abs().max() < 1e-4
    noisy_a, _ = sample(G_ema, seeds=[3], noise_mode="random")
    noisy_b, _ = sample(G_ema, seeds=[3], noise_mode="random")
    assert torch.equal(noisy_a, noisy_b)


def test_sample_conditional_and_errors(data, tmp_path):
    result = train(tiny("spade", 1, extra={"num_d": 1, "d_layers": 3}), data, tmp_path)
    G_ema, _ = load_checkpoint(result.checkpoint)
    images, masks = sample(G_ema, seeds=[1, 2], cond=data.masks[:2])
    assert images.shape == (2, 1, 32, 32) and torch.equal(masks, data.masks[:2])
    with pytest.raises(ValueError):
        sample(G_ema, seeds=[1])  # SPADE needs a mask per seed
    with pytest.raises(ValueError, match="truncation"):
        sample(G_ema, seeds=[1], psi=0.5, cond=data.masks[:1])


# -- multi-process -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_ARCHS = ("dcgan", "wgan", "wgan_gp", "hinge", "spade", "stylegan")


def test_ddp_two_ranks_on_cpu(tmp_path):
    """torchrun, two gloo ranks, G and D in DistributedDataParallel: the ranks draw different z, noise and
    augmentations, so only gradients averaged over ranks (and rank 0's buffers) keep their weights equal."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), str(REPO / "tests" / "ml" / "ddp_worker.py"), str(tmp_path), *DDP_ARCHS,
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for arch in DDP_ARCHS:
        rank0 = torch.load(tmp_path / arch / "rank0.pt", weights_only=True)
        rank1 = torch.load(tmp_path / arch / "rank1.pt", weights_only=True)
        assert rank0["step"] == rank1["step"] >= 1, arch
        assert_same_weights(rank0, rank1)
        run = tmp_path / arch / "run"
        assert len(lines(run / "stats.jsonl")) >= 1 and (run / "checkpoints" / "latest.pt").exists()
        ckpt = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
        assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2  # every rank's RNG, for an exact resume
        assert_same_weights(ckpt, rank0)
    stylegan = torch.load(tmp_path / "stylegan" / "rank0.pt", weights_only=True)
    assert stylegan["step"] == 3  # lazy R1 and path length ran at step 2 (interval 2)
