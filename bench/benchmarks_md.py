"""Shared by the bench scripts: replace (or append) one section of BENCHMARKS.md."""

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def write_section(title: str, section: str, path: Path = BENCHMARKS) -> Path:
    """`section` starts with the `## title` line; every other section is left as it is."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == title), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        after = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + after if after else "")
    path.write_text(new)
    return path


def machine_description() -> str:
    """'2 CPUs (nproc), <model>; Linux <release>; Python <version>' for the benchmark tables."""
    import os
    import platform

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{nproc} CPUs (nproc), {model}; {platform.system()} {platform.release()}; Python {platform.python_version()}"
    )
