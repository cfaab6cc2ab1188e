"""One rank of the 2-process DDP test (``tests/ml/test_trainer.py::test_ddp_two_ranks_on_cpu``).

Launched by ``torchrun --nproc_per_node 2 ddp_worker.py OUT ARCH [ARCH ...]``: the worker joins a gloo process
group once, then ``train`` (which finds RANK/WORLD_SIZE/LOCAL_RANK in the environment and reuses the group) gives
each rank half of every global batch, for each architecture in turn. Each rank saves its final G, D and G_ema
weights to ``<out>/<arch>/rank<r>.pt`` (the test asserts they are identical); only rank 0 writes
``<out>/<arch>/run``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from synthesis.gans.trainer import TrainConfig, TrainData, train


def run(out: Path, arch: str) -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 1, 32, 32, generator=g) * 2 - 1
    masks = torch.randint(0, 3, (8, 32, 32), generator=g)
    # stylegan exercises the ADA sign gather, lazy R1 and the path-length mean all-reduce.
    # wgan_gp: three D forwards (real, fake, interpolates) before one backward through the DDP wrapper.
    # spade: a conditional G and D, feature matching through the unwrapped D.
    extra = {
        "stylegan": {"map_layers": 1, "r1_interval": 2, "pl_interval": 2, "augment_p": 0.5, "augment": "ada"},
        "spade": {"extra": {"num_d": 1, "d_layers": 3}},
    }.get(arch, {})
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
    result = train(cfg, TrainData(images, masks, n_classes=3), out / arch / "run")
    state = {name: getattr(result, name).state_dict() for name in ("G", "D", "G_ema")}
    torch.save({"step": result.step, "kimg": result.kimg, **state}, out / arch / f"rank{os.environ['RANK']}.pt")


def main(out: Path, archs: list[str]) -> None:
    torch.set_num_threads(1)  # two ranks on a 2-core machine
    dist.init_process_group("gloo")
    try:
        for arch in archs:
            run(out, arch)
            dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or ["dcgan"])
