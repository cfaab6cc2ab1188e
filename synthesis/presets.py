"""Launch presets: the authors' recommended settings, and a small one that trains in minutes on a CPU."""

PRESETS = {
    "authors": {
        "title": "Authors' recommendations",
        "help": "Each architecture's published hyperparameters (batch, learning rates, n_critic, penalties).",
        "overrides": {},
    },
    "cpu-small": {
        "title": "Small, for a CPU",
        "help": "Narrow networks, small batches and frequent snapshots: a demo run finishes in minutes on 2 cores.",
        "overrides": {
            "base_channels": 16,
            "batch_size": 16,
            "tick_kimg": 0.25,
            "snapshot_kimg": 1.0,
            "metric_n": 64,
            "n_grid": 16,
            # SWD only at the frequent snapshots: Inception features of 64 images take ~12 s on 2 cores.
            "metric": "swd",
        },
        # Per-architecture adjustments on top (e.g. a shorter mapping network for StyleGAN).
        "per_arch": {"stylegan": {"map_layers": 2, "pl_weight": 0.0}, "spade": {"batch_size": 8}},
    },
}


def preset_overrides(preset: str, arch: str) -> dict:
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    return {**spec["overrides"], **spec.get("per_arch", {}).get(arch, {})}
