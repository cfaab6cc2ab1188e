"""FID throughput: pytorch-fid 0.3.0's command line against our FID, on the same PNG folders with the same weights.

    .venv/bin/python bench/fid_throughput.py --images 200 --write-benchmarks
    .venv/bin/python bench/fid_throughput.py --weights /path/to/pt_inception-2015-12-05-6726825d.pth

1. Writes two folders of N 8-bit grayscale PNGs (--size px, padded square and Lanczos-resized like the importer):
   the "real" set is the cardiac phantom with seed 0, the candidate the same phantom with seed 1
   (--candidate other-seed) or the real set blurred and noised (--candidate degraded).
2. Weights: with --weights, the official file (its SHA-256 must match; a mismatch is an error, never a silent
   fallback). Without, a random-weight FID-Inception (BatchNorm recalibrated on real images, Mixed_7c's last
   BatchNorms scaled by 0.01 so pool3 magnitudes are of the official network's order: pytorch-fid's absolute
   1e-3 imaginary-part check fails on the raw random network's ~100x larger features). Random-weight FID values
   are NOT comparable to published FIDs. The file goes where pytorch-fid looks,
   $TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth, with TORCH_HOME a temporary folder, so the
   user's torch cache is never read or written.
3. Times, in one run: (a) `python -m pytorch_fid DIR1 DIR2 --device cpu --batch-size 50 --num-workers 0`
   (subprocess, wall time, its "FID:" line parsed); (b) our FID on the same folders (PNG / 255 ->
   extract_features with the same weights via load_fid_inception -> fid_from_features); (c) our second
   evaluation with the reference features cached in an .npy file (only the candidate's features computed), as
   the app does. Then, for the breakdown, pytorch-fid's calculate_frechet_distance and our fid_from_features on
   the same features in this process.
4. Prints a Markdown section; --write-benchmarks replaces it in BENCHMARKS.md.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from benchmarks_md import machine_description, write_section
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.metrics import features as fid_features  # noqa: E402
from evaluation.metrics.fid import fid_from_features  # noqa: E402
from imagesets.canonical import make_square, resize_image  # noqa: E402
from imagesets.phantoms import cardiac_subject  # noqa: E402

SECTION = "## FID throughput (bench/fid_throughput.py)"
RANDOM_LABEL = "random weights: values are not comparable to published FIDs"
POOL3_SCALE = 0.01
MIXED_7C_LAST_BN = ("branch1x1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool")


# ---- data -----------------------------------------------------------------------------------------


def phantom_images(seed: int, n: int, size: int) -> np.ndarray:
    """The first ``n`` cardiac phantom slices of ``seed`` (subjects in order), ``(n, size, size)`` float32 [0, 1]."""
    out: list[np.ndarray] = []
    index = 0
    while len(out) < n:
        for sample in cardiac_subject(seed, index):
            image, _ = make_square(sample.image, None, "pad")
            out.append(resize_image(image, size))
            if len(out) == n:
                break
        index += 1
    return np.stack(out)


def degrade(images: np.ndarray, seed: int) -> np.ndarray:
    """Gaussian blur (sigma 1.5 px) and additive noise (sigma 0.05): a visibly worse 'generator'."""
    rng = np.random.default_rng(seed)
    blurred = ndimage.gaussian_filter(images, sigma=(0, 1.5, 1.5))
    return np.clip(blurred + 0.05 * rng.standard_normal(images.shape), 0, 1).astype(np.float32)


def write_pngs(folder: Path, images: np.ndarray) -> None:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L").save(folder / f"{i:05d}.png")


def read_pngs(folder: Path) -> np.ndarray:
    """8-bit PNGs (sorted by name, as pytorch-fid) -> ``(N, 1, H, W)`` float32 = uint8 / 255.

    Gray stays one channel: extract_features repeats it to three, which is what PIL's convert("RGB") gives
    pytorch-fid.
    """
    arrays = [np.asarray(Image.open(p).convert("L")) for p in sorted(folder.glob("*.png"))]
    return np.stack(arrays)[:, None].astype(np.float32) / np.float32(255)


# ---- weights --------------------------------------------------------------------------------------


def place_weights(args, torch_home: Path, calibration: np.ndarray) -> tuple[Path, str, str | None]:
    """Put the weights where pytorch-fid's torch hub looks. Returns (path, description, expected SHA-256)."""
    target = torch_home / "hub" / "checkpoints" / fid_features.INCEPTION_FILENAME
    target.parent.mkdir(parents=True)
    if args.weights is not None:
        source = args.weights.resolve()
        if not source.is_file():
            raise SystemExit(f"--weights {source}: no such file")
        digest = fid_features.sha256_file(source)
        if digest != fid_features.INCEPTION_SHA256:
            raise SystemExit(
                f"--weights {source} has SHA-256 {digest}, not the official {fid_features.INCEPTION_SHA256}; "
                "refusing to label its numbers as official FIDs (leave out --weights for a random-weight run)."
            )
        target.symlink_to(source)
        return target, f"official FID-Inception weights ({fid_features.INCEPTION_FILENAME}, SHA-256 verified)", digest
    model = fid_features.build_random_fid_inception(calibration, seed=0)
    state_dict = model.state_dict()
    for branch in MIXED_7C_LAST_BN:
        for param in ("weight", "bias"):
            state_dict[f"Mixed_7c.{branch}.bn.{param}"] *= POOL3_SCALE
    torch.save(state_dict, target)
    return target, f"**{RANDOM_LABEL}** (random FID-Inception, seed 0, saved to a temporary file)", None


# ---- the three timed runs -------------------------------------------------------------------------


def run_pytorch_fid(dirs: list[Path], args, torch_home: Path) -> dict:
    cmd = [sys.executable, "-m", "pytorch_fid", str(dirs[0]), str(dirs[1])]
    cmd += ["--device", "cpu", "--batch-size", str(args.batch_size), "--num-workers", "0"]
    env = {**os.environ, "TORCH_HOME": str(torch_home), "OMP_NUM_THREADS": str(args.threads)}
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - started
    match = re.search(r"FID:\s+(\S+)", proc.stdout)
    if proc.returncode != 0 or match is None:
        raise SystemExit(f"pytorch-fid failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    shown = f"TORCH_HOME={torch_home} OMP_NUM_THREADS={args.threads} python -m pytorch_fid " + shlex.join(cmd[3:])
    return {"wall": wall, "fid": float(match.group(1)), "command": shown, "stderr": proc.stderr}


def python_startup(torch_home: Path, threads: int) -> float:
    """Seconds for a fresh interpreter to import pytorch-fid (part of the command line's wall time)."""
    env = {**os.environ, "TORCH_HOME": str(torch_home), "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pytorch_fid.fid_score"], env=env, check=True)
    return time.perf_counter() - started


def run_ours(dirs: list[Path], weights: Path, expected_sha256: str | None, args) -> dict:
    t0 = time.perf_counter()
    model = fid_features.load_fid_inception(weights, expected_sha256=expected_sha256)
    t1 = time.perf_counter()
    images = [read_pngs(d) for d in dirs]
    t2 = time.perf_counter()
    feats = [fid_features.extract_features(model, x, batch_size=args.batch_size) for x in images]
    t3 = time.perf_counter()
    fid = fid_from_features(*feats)
    t4 = time.perf_counter()
    return {
        "wall": t4 - t0,
        "fid": fid,
        "features": feats,
        "stages": {"load weights": t1 - t0, "read PNGs": t2 - t1, "features": t3 - t2, "Fréchet": t4 - t3},
    }


def run_ours_cached(dirs: list[Path], weights: Path, expected_sha256: str | None, cache: Path, args) -> dict:
    """A second evaluation: reference features from the .npy cache, only the candidate's computed."""
    t0 = time.perf_counter()
    model = fid_features.load_fid_inception(weights, expected_sha256=expected_sha256)
    reference = np.load(cache)
    candidate = fid_features.extract_features(model, read_pngs(dirs[1]), batch_size=args.batch_size)
    fid = fid_from_features(reference, candidate)
    return {"wall": time.perf_counter() - t0, "fid": fid}


def frechet_breakdown(feats: list[np.ndarray]) -> dict:
    """pytorch-fid's statistics + sqrtm Fréchet distance against ours (eigh), on the same features."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    started = time.perf_counter()
    stats = [(f.mean(axis=0), np.cov(f, rowvar=False)) for f in feats]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm's `disp` deprecation and singular-matrix warnings
        theirs = float(calculate_frechet_distance(*stats[0], *stats[1]))
    their_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = fid_from_features(*feats)
    return {"theirs": theirs, "their_s": their_s, "ours": ours, "our_s": time.perf_counter() - started}


# ---- report ---------------------------------------------------------------------------------------


def machine() -> str:
    return f"{machine_description()}, torch {torch.__version__}"


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else float("nan")


def report(args, weights_desc: str, pf: dict, ours: dict, cached: dict, breakdown: dict | None, startup: float) -> str:
    n = args.images
    candidate = "the same phantom with seed 1" if args.candidate == "other-seed" else "the real set degraded"
    rows = [
        ("pytorch-fid 0.3.0 command line", 2 * n, pf),
        ("ours (evaluation.metrics), both sets", 2 * n, ours),
        ("ours, reference features cached (.npy)", n, cached),
    ]
    lines = [
        SECTION,
        "",
        f"FID of {n} cardiac-phantom slices (seed 0) against {n} of {candidate}, {args.size}x{args.size} 8-bit "
        "grayscale PNGs, on CPU. Same folders and same weights file for both implementations; pytorch-fid runs "
        "as a fresh process (its wall time includes interpreter start-up and imports), ours in-process "
        "(including loading the weights and reading the PNGs).",
        "",
        f"- Weights: {weights_desc}",
        f"- Machine: {machine()}; torch threads: {args.threads} (OMP_NUM_THREADS for the pytorch-fid process); "
        f"load average (1 min) {args.load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
        f"- Command: `{args.command}`",
        f"- pytorch-fid command: `{pf['command']}`",
        "",
        "| Implementation | Images featurised | Images/s | Wall s | FID | Speed-up vs pytorch-fid | FID rel. diff vs pytorch-fid |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, count, r in rows:
        ratio, diff = (
            ("1 (reference)", "—") if r is pf else (f"{pf['wall'] / r['wall']:.2f}x", f"{rel(r['fid'], pf['fid']):.1e}")
        )
        lines.append(
            f"| {name} | {count} | {count / r['wall']:.2f} | {r['wall']:.1f} | {r['fid']:.6g} | {ratio} | {diff} |"
        )
    stages = ours["stages"]
    lines += [
        "",
        "Where the time goes:",
        "",
        "| Stage | Seconds |",
        "| --- | ---: |",
        f"| pytorch-fid: fresh interpreter importing pytorch_fid (in its wall time) | {startup:.1f} |",
    ]
    if breakdown is not None:
        lines.append(
            f"| pytorch-fid: statistics + Fréchet distance (scipy sqrtm, 2048x2048), same features, in-process "
            f"| {breakdown['their_s']:.1f} |"
        )
    lines += [f"| ours: {name} | {sec:.1f} |" for name, sec in stages.items()]
    if breakdown is not None:
        lines += [
            "",
            f"On identical features the two Fréchet computations give {breakdown['theirs']:.8g} (pytorch-fid) and "
            f"{breakdown['ours']:.8g} (ours): relative difference {rel(breakdown['ours'], breakdown['theirs']):.1e}.",
        ]
    return "\n".join(lines) + "\n"


def write_benchmarks(section: str) -> Path:
    """Replace (or append) this script's section in BENCHMARKS.md."""
    return write_section(SECTION, section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="images per folder")
    parser.add_argument("--size", type=int, default=128, help="image size in pixels")
    parser.add_argument("--candidate", choices=["other-seed", "degraded"], default="other-seed")
    parser.add_argument("--weights", type=Path, help="the official pt_inception-2015-12-05-6726825d.pth")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (both sides)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip timing the Fréchet step separately")
    parser.add_argument("--write-benchmarks", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args(argv)
    args.command = ".venv/bin/python bench/fid_throughput.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    args.load = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="fid-bench-") as tmp:
        tmp = Path(tmp)
        print(f"Writing {args.images} + {args.images} PNGs ({args.size} px) ...", flush=True)
        real = phantom_images(0, args.images, args.size)
        fake = phantom_images(1, args.images, args.size) if args.candidate == "other-seed" else degrade(real, 1)
        dirs = [tmp / "real", tmp / "candidate"]
        write_pngs(dirs[0], real)
        write_pngs(dirs[1], fake)
        torch_home = tmp / "torch_home"
        calibration = read_pngs(dirs[0])[:: max(1, args.images // 32)][:32]
        weights, weights_desc, expected = place_weights(args, torch_home, calibration)
        print(f"Weights: {weights_desc.replace('**', '')}", flush=True)

        print("(a) pytorch-fid command line ...", flush=True)
        pf = run_pytorch_fid(dirs, args, torch_home)
        print(f"    {pf['wall']:.1f} s, FID {pf['fid']:.6g}", flush=True)
        print("(b) ours, both sets ...", flush=True)
        ours = run_ours(dirs, weights, expected, args)
        print(f"    {ours['wall']:.1f} s, FID {ours['fid']:.6g}", flush=True)
        cache = tmp / "reference-features.npy"
        np.save(cache, ours["features"][0])
        print("(c) ours, reference features cached ...", flush=True)
        cached = run_ours_cached(dirs, weights, expected, cache, args)
        print(f"    {cached['wall']:.1f} s, FID {cached['fid']:.6g}", flush=True)
        startup = python_startup(torch_home, args.threads)
        breakdown = None
        if not args.no_breakdown:
            print("Fréchet step of both on the same features ...", flush=True)
            breakdown = frechet_breakdown(ours["features"])
        section = report(args, weights_desc, pf, ours, cached, breakdown, startup)
        if pf["stderr"].strip():
            print("pytorch-fid stderr (last lines):\n" + "\n".join(pf["stderr"].strip().splitlines()[-5:]))
    print()
    print(section)
    if args.write_benchmarks:
        print(f"Wrote {write_benchmarks(section).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
