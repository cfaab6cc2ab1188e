"""Per-rater trial orders. Pure Python, no Django."""

import random
from collections.abc import Sequence

MAX_RUN = 3


def longest_run(labels: Sequence[bool]) -> int:
    best = run = 0
    previous = None
    for label in labels:
        run = run + 1 if label == previous else 1
        previous = label
        best = max(best, run)
    return best


def _can_finish(n_same: int, n_other: int, run: int, max_run: int) -> bool:
    """Can n_same + n_other items still be laid out with no run over max_run, given a current run of
    `run` items of the 'same' class? Each other-class item opens room for max_run more of this class."""
    return n_same <= (max_run - run) + max_run * n_other


def rater_order(
    *, training_ids: Sequence[int], test_items: Sequence[tuple[int, bool]], seed: int, max_run: int = MAX_RUN
) -> list[int]:
    """Training block first, then the test images in a seeded random order with no run of one class
    longer than `max_run` (long runs invite serial-dependence bias and guessing from streaks).

    Built one trial at a time: the class of the next trial is drawn with probability proportional to
    what is left of each class, among the classes that keep the rest of the order feasible. When the
    balance makes the limit impossible (e.g. 9 real and 1 generated), runs are kept as short as they
    can be.
    """
    rng = random.Random(seed)
    training = list(training_ids)
    rng.shuffle(training)
    pools: dict[bool, list[int]] = {True: [], False: []}
    for pk, generated in test_items:
        pools[bool(generated)].append(pk)
    for pool in pools.values():
        rng.shuffle(pool)
    order: list[int] = []
    last: bool | None = None
    run = 0
    while pools[True] or pools[False]:
        candidates = []
        for label in (True, False):
            if not pools[label]:
                continue
            new_run = run + 1 if label == last else 1
            if new_run > max_run:
                continue
            # After taking `label`, the other class must still be placeable, and so must this one.
            other = not label
            if _can_finish(len(pools[other]), len(pools[label]) - 1, 0, max_run) and _can_finish(
                len(pools[label]) - 1, len(pools[other]), new_run, max_run
            ):
                candidates.append(label)
        if not candidates:
            # The limit cannot be kept: take the larger class that is allowed, else any.
            allowed = [lb for lb in (True, False) if pools[lb] and not (lb == last and run >= max_run)]
            candidates = allowed or [lb for lb in (True, False) if pools[lb]]
        weights = [len(pools[label]) for label in candidates]
        label = rng.choices(candidates, weights=weights)[0]
        order.append(pools[label].pop())
        run = run + 1 if label == last else 1
        last = label
    return training + order
