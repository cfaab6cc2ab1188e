"""GAN training throughput and a learning check, on this machine's CPU (and a GPU when there is one).

1. Throughput: images per second and peak memory for every registered GAN at 64x64 and 128x128 (the
   cardiac phantom with its 4 mask classes), each in its own process so peak memory is its own.
2. Learning: for every GAN on the cardiac phantom at 64x64, the sliced Wasserstein distance (ProGAN's
   SWD on Laplacian-pyramid patches, x10^3) of G_ema samples against real images before training and
   after a fixed wall-clock budget: a GAN that learns lowers it.

    .venv/bin/python bench/train_throughput.py [--budget 120] [--archs dcgan,stylegan] [--write-benchmarks]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from benchmarks_md import write_section  # noqa: E402

from imagesets.canonical import canonicalise  # noqa: E402
from imagesets.importers.base import ImportOptions  # noqa: E402
from imagesets.phantoms import open_dataset  # noqa: E402
from synthesis.gans.quality import sliced_wasserstein_distance  # noqa: E402
from synthesis.gans.registry import GANS, get_gan  # noqa: E402
from synthesis.gans.trainer import TrainConfig, TrainData, sample, train  # noqa: E402

SECTION = "## GAN training throughput and learning (bench/train_throughput.py)"
# Settings of the "cpu-small" preset (synthesis/presets.py), so the numbers match a demo run.
SMALL = {"base_channels": 16, "batch_size": 16, "map_layers": 2, "pl_weight": 0.0}


def phantom_data(size: int, subjects: int = 24) -> TrainData:
    header, samples = open_dataset(Path("cardiac"), ImportOptions(size=size, subjects=subjects), None)
    images, masks = [], []
    for s in samples:
        if s.split != "train" or s.mask is None or not s.mask.any():
            continue
        image, mask = canonicalise(s.image, s.mask, size=size, channels=1, n_classes=4, square=header.square)
        images.append(image[None])
        masks.append(mask)
    x = torch.from_numpy(np.stack(images)) * 2 - 1  # (N, 1, H, W) in [-1, 1]
    return TrainData(images=x, masks=torch.from_numpy(np.stack(masks).astype(np.int64)), n_classes=4)


def config(arch: str, size: int, **extra) -> TrainConfig:
    overrides = {k: v for k, v in SMALL.items() if k in TrainConfig.__dataclass_fields__ or k in get_gan(arch).preset}
    if arch == "spade":
        overrides["batch_size"] = 8
    return TrainConfig.resolve(arch, {**overrides, "resolution": size, "img_channels": 1, "n_classes": 4, **extra})


def throughput(arch: str, size: int, seconds: float, device: str) -> dict:
    """Train for about `seconds`; img/s from the trainer's own tick statistics (first tick dropped)."""
    data = phantom_data(size, subjects=8)
    cfg = config(arch, size, kimg=1000.0, tick_kimg=0.032, snapshot_kimg=1e6, metric="none")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(cfg, data, run_dir, abort_fn=lambda: time.monotonic() - started > seconds, device=device)
        stats = [json.loads(line) for line in (Path(run_dir) / "stats.jsonl").read_text().splitlines()]
    rates = [s["img_per_s"] for s in stats[1:]] or [s["img_per_s"] for s in stats]
    peak = stats[-1]["gpu_peak_mb"] if device == "cuda" else stats[-1]["cpu_peak_mb"]
    return {
        "arch": arch,
        "size": size,
        "img_per_s": float(np.median(rates)),
        "peak_mb": peak,
        "steps": result.step,
        "device": device,
    }


def learning(arch: str, budget: float, device: str) -> dict:
    data = phantom_data(64)
    n = 128
    reals = data.images[:n]
    cfg = config(arch, 64, kimg=1000.0, tick_kimg=0.032, snapshot_kimg=1e6, metric="none")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as run_dir:
        # Abort at once to get the untrained G_ema, then train from that checkpoint for the budget.
        first = train(cfg, data, run_dir, abort_fn=lambda: True, device=device)
        cond = data.batch(torch.arange(n) % len(data), torch.device("cpu"))[1] if cfg.conditional else None
        before, _ = sample(first.G_ema, seeds=list(range(n)), cond=cond, device=device)
        started = time.monotonic()
        result = train(
            cfg,
            data,
            run_dir,
            resume_from=Path(run_dir) / "checkpoints" / "latest.pt",
            abort_fn=lambda: time.monotonic() - started > budget,
            device=device,
        )
        after, _ = sample(result.G_ema, seeds=list(range(n)), cond=cond, device=device)
    swd0 = sliced_wasserstein_distance(before, reals, seed=0)["swd_avg"] * 1e3
    swd1 = sliced_wasserstein_distance(after, reals, seed=0)["swd_avg"] * 1e3
    return {
        "arch": arch,
        "swd_before": swd0,
        "swd_after": swd1,
        "kimg": result.kimg,
        "seconds": time.monotonic() - started,
    }


def run_worker(args) -> None:
    torch.set_num_threads(args.threads)
    if args.worker == "throughput":
        out = throughput(args.arch, args.size, args.seconds, args.device)
    else:
        out = learning(args.arch, args.budget, args.device)
    print("RESULT " + json.dumps(out))


def spawn(*argv: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker {argv} failed:\n{proc.stderr[-3000:]}")


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return f"{os.cpu_count()} CPUs ({cpu}); GPU: {gpu}; torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default=",".join(sorted(GANS)))
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--seconds", type=float, default=25.0, help="training time per throughput measurement")
    parser.add_argument("--budget", type=float, default=120.0, help="training seconds per GAN for the SWD check")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-learning", action="store_true")
    parser.add_argument("--write-benchmarks", action="store_true")
    parser.add_argument("--worker", choices=["throughput", "learning"], help=argparse.SUPPRESS)
    parser.add_argument("--arch", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    archs = [a for a in args.archs.split(",") if a]
    common = ["--threads", str(args.threads), "--device", args.device]
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python {' '.join(['bench/train_throughput.py', *sys.argv[1:]])}`",
        "",
        f"Machine: {machine()}; {args.threads} torch threads; the cpu-small preset widths "
        f"(base_channels 16, batch 16; SPADE batch 8; StyleGAN mapping 2 layers, no path-length term), the "
        "cardiac phantom with 4 mask classes (image + masks generated together; SPADE is given the masks).",
        "",
        "| GAN | size | img/s | peak memory (MB) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for arch in archs:
        for size in [int(s) for s in args.sizes.split(",")]:
            r = spawn(
                "--worker", "throughput", "--arch", arch, "--size", str(size), "--seconds", str(args.seconds), *common
            )
            lines.append(f"| {arch} | {size} | {r['img_per_s']:.1f} | {r['peak_mb']} |")
            print(lines[-1], flush=True)
    if not args.skip_learning:
        lines += [
            "",
            f"Learning on the cardiac phantom at 64x64: SWD x10^3 of 128 G_ema samples against 128 real "
            f"training images (lower is better), before training and after {args.budget:.0f} s of training.",
            "",
            "| GAN | SWD before | SWD after | kimg trained | change |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for arch in archs:
            r = spawn("--worker", "learning", "--arch", arch, "--budget", str(args.budget), *common)
            change = (r["swd_after"] - r["swd_before"]) / r["swd_before"] * 100
            lines.append(
                f"| {arch} | {r['swd_before']:.1f} | {r['swd_after']:.1f} | {r['kimg']:.2f} | {change:+.0f}% |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write_benchmarks:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
