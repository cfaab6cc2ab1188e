"""The paper's second test (U-Net segmentation Dice) on the cardiac demo phantom, on CPU.

    .venv/bin/python bench/unet_phantom.py --size 64 128 --write-benchmarks
    .venv/bin/python bench/unet_phantom.py --size 128 --steps 800

The real-data arm of the Dice protocol, as the app runs it (evaluation.services._dice with its default budget):
the cardiac phantom (--subjects 24, --phantom-seed 0) imported like ``import_dataset --skip-empty``: split by
subject with imagesets.importers.base.assign_splits (seed 0, val 0.1, test 0.2), slices whose source mask is
empty dropped, padded square and resized to --size (Lanczos image, nearest mask). A U-Net
(evaluation.metrics.unet.train_unet: base width 16, depth 4, BatchNorm, batch 8, Adam lr 1e-3 with cosine
decay, CE + soft Dice, seed 0) trains for --steps on the train split, validating once per epoch on the val
split and keeping the best model; it is tested on the test split. Reported: per-class Dice (RV, MYO, LV) mean
± SD (ddof 1) and count over test slices (nnU-Net conventions: a class absent from prediction and ground truth
is not counted), the foreground mean (mean of the class means), and, as the "no learning" reference, the Dice
of a fixed prediction: the per-pixel most frequent training label. --write-benchmarks replaces the section in
BENCHMARKS.md with one row per --size.
"""

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from benchmarks_md import machine_description, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.metrics.dice import dice_scores  # noqa: E402
from evaluation.metrics.unet import predict, train_unet  # noqa: E402
from imagesets.canonical import canonicalise  # noqa: E402
from imagesets.importers.base import ImportOptions, assign_splits  # noqa: E402
from imagesets.phantoms import CARDIAC_LABELS, open_dataset, subject_name  # noqa: E402

SECTION = "## U-Net Dice on the cardiac phantom (bench/unet_phantom.py)"
N_CLASSES = len(CARDIAC_LABELS)


def load_native(args) -> tuple[list, str]:
    """Phantom samples at native size, empty-mask slices dropped; checks the split is assign_splits'."""
    options = ImportOptions(
        subjects=args.subjects, seed=args.phantom_seed, split_seed=0, val_fraction=0.1, test_fraction=0.2
    )
    header, samples = open_dataset(Path("cardiac"), options, None)
    expected = assign_splits(
        [subject_name("cardiac", k) for k in range(args.subjects)], seed=0, val_fraction=0.1, test_fraction=0.2
    )
    kept = []
    for s in samples:
        assert s.split == expected[s.subject]
        # Like --skip-empty: "empty" is judged on the source mask.
        if s.mask is not None and np.any(s.mask):
            kept.append(s)
    return kept, header.square


def canonical_arrays(samples: list, square: str, size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per split: images ``(N, 1, size, size)`` float32 [0, 1] and masks ``(N, size, size)`` uint8."""
    parts: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], []), "test": ([], [])}
    for s in samples:
        image, mask = canonicalise(s.image, s.mask, size=size, channels=1, n_classes=N_CLASSES, square=square)
        parts[s.split][0].append(image[None])
        parts[s.split][1].append(mask)
    return {k: (np.stack(x).astype(np.float32), np.stack(y)) for k, (x, y) in parts.items()}


def class_table(per_image: np.ndarray) -> list[tuple[float, float, int]]:
    """Per foreground class: (mean, SD with ddof 1, count) over the non-NaN test values (as the app)."""
    out = []
    for c in range(per_image.shape[1]):
        valid = per_image[:, c][~np.isnan(per_image[:, c])]
        out.append(
            (
                float(valid.mean()) if len(valid) else float("nan"),
                float(valid.std(ddof=1)) if len(valid) > 1 else float("nan"),
                len(valid),
            )
        )
    return out


def run_size(size: int, samples: list, square: str, args) -> dict:
    started = time.perf_counter()
    data = canonical_arrays(samples, square, size)
    (tx, ty), (vx, vy), (sx, sy) = data["train"], data["val"], data["test"]
    print(f"[{size}px] train {len(tx)}, val {len(vx)}, test {len(sx)} slices", flush=True)

    def progress(step: int, total: int, info: dict) -> None:
        print(
            f"[{size}px] step {step}/{total}  loss {info['train_loss']:.3f}  val Dice {info['val_dice']:.3f}  "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )

    result = train_unet(
        tx,
        ty,
        vx,
        vy,
        n_classes=N_CLASSES,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        base_width=args.base_width,
        seed=args.seed,
        progress_fn=progress,
    )
    scores = dice_scores(predict(result.model, sx), sy, N_CLASSES)
    wall = time.perf_counter() - started
    # "No learning" reference: every test slice gets the per-pixel most frequent training label.
    counts = np.stack([(ty == c).sum(axis=0) for c in range(N_CLASSES)])  # (K, H, W)
    prior = np.broadcast_to(counts.argmax(axis=0), sy.shape)
    prior_scores = dice_scores(prior, sy, N_CLASSES)
    return {
        "size": size,
        "n": (len(tx), len(vx), len(sx)),
        "classes": class_table(scores["per_image"]),
        "foreground": scores["foreground_mean"],
        "prior_foreground": prior_scores["foreground_mean"],
        "best_step": result.best_step,
        "best_val": result.best_val_dice,
        "train_s": result.seconds,
        "wall": wall,
    }


def machine() -> str:
    return f"{machine_description()}, torch {torch.__version__}"


def report(args, rows: list[dict], generate_s: float) -> str:
    names = CARDIAC_LABELS[1:]
    lines = [
        SECTION,
        "",
        f"Real-data arm of the Dice test on the cardiac phantom ({args.subjects} subjects, phantom seed "
        f"{args.phantom_seed}), split by subject (assign_splits seed 0, val 0.1, test 0.2), slices with an empty "
        f"mask dropped. U-Net base width {args.base_width}, depth 4, BatchNorm, batch {args.batch_size}, "
        f"lr {args.lr:g} (Adam, cosine), {args.steps} steps, seed {args.seed}, validation once per epoch with the "
        "best model kept; Dice on the test split, mean ± SD (count of test slices scored). Prior = a fixed "
        "prediction, the per-pixel most frequent training label (what a network that learned nothing but the "
        "average layout would score). Wall = canonicalising + training + testing, on CPU.",
        "",
        f"- Machine: {machine()}; torch threads: {torch.get_num_threads()}; load average (1 min) "
        f"{args.load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
        f"- Command: `{args.command}`",
        f"- Phantom generation (native size, once for all rows): {generate_s:.1f} s",
        "",
        "| Size | Slices train / val / test | "
        + " | ".join(f"{n} Dice" for n in names)
        + " | Foreground mean | Prior foreground | Best step (val Dice) | Train s | Wall s |",
        "| --- | --- | " + " | ".join("---:" for _ in names) + " | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cells = [f"{m:.3f} ± {sd:.3f} ({n})" for m, sd, n in r["classes"]]
        lines.append(
            f"| {r['size']}x{r['size']} | {' / '.join(map(str, r['n']))} | "
            + " | ".join(cells)
            + f" | {r['foreground']:.3f} | {r['prior_foreground']:.3f} | {r['best_step']} ({r['best_val']:.3f}) "
            f"| {r['train_s']:.0f} | {r['wall']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_benchmarks(section: str) -> Path:
    """Replace (or append) this script's section in BENCHMARKS.md."""
    return write_section(SECTION, section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs="+", default=[128], help="canonical size(s); one row each")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--base-width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0, help="U-Net seed")
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--phantom-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--write-benchmarks", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args(argv)
    args.command = ".venv/bin/python bench/unet_phantom.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    args.load = os.getloadavg()

    started = time.perf_counter()
    samples, square = load_native(args)
    generate_s = time.perf_counter() - started
    print(f"{len(samples)} slices with masks from {args.subjects} subjects in {generate_s:.1f} s", flush=True)
    rows = [run_size(size, samples, square, args) for size in args.size]
    section = report(args, rows, generate_s)
    print()
    print(section)
    if args.write_benchmarks:
        print(f"Wrote {write_benchmarks(section).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
