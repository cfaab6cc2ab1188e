"""One rank of the 2-process DDP test (``tests/ml/test_trainer.py::test_ddp_two_ranks_on_cpu``).

Launched by ``torchrun --nproc_per_node 2``: ``train`` finds RANK/WORLD_SIZE/LOCAL_RANK in the environment,
joins a gloo process group and gives each rank half of every global batch. Each rank saves its final G, D and
G_ema weights to ``<out>/rank<r>.pt`` (the test asserts they are identical); only rank 0 writes ``<out>/run``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from synthesis.gans.trainer import TrainConfig, TrainData, train


def main(out: Path, arch: str) -> None:
    torch.set_num_threads(1)  # two ranks on a 2-core machine
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 1, 32, 32, generator=g) * 2 - 1
    masks = torch.randint(0, 3, (8, 32, 32), generator=g)
    # stylegan exercises the ADA sign gather, lazy R1 and the path-length mean all-reduce.
    extra = {"map_layers": 1, "r1_interval": 2, "pl_interval": 2, "augment_p": 0.5} if arch == "stylegan" else {}
    cfg = TrainConfig.resolve(
        arch,
        {
            "resolution": 32,
            "img_channels": 1,
            "n_classes": 3,
            "base_channels": 4,
            "z_dim": 8,
            "batch_size": 4,  # 2 per rank
            "kimg": 0.012,  # 3 steps
            "tick_kimg": 0.004,
            "snapshot_kimg": 1.0,  # only the final snapshot
            "metric_n": 4,
            "n_grid": 2,
            **extra,
        },
    )
    result = train(cfg, TrainData(images, masks, n_classes=3), out / "run")
    state = {name: getattr(result, name).state_dict() for name in ("G", "D", "G_ema")}
    torch.save({"step": result.step, "kimg": result.kimg, **state}, out / f"rank{os.environ['RANK']}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "dcgan")
