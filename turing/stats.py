"""Statistics for visual Turing tests (VTTs): readers judge images real vs generated.

Pure NumPy/SciPy/statsmodels; no Django import, so the module can be tested and reused without a database.

Conventions (stated in every export, see the research note §4–5 on papers that flip them):

* positive class = **generated** ("fake"); truth per image is 1 = generated, 0 = real;
* a rating has a binary ``call`` (1 = called generated) and an optional ordinal ``score`` oriented so that
  higher = more confident the image is generated (forced choice + confidence c in 1..5 gives +c / -c; the
  6-point scale gives the level 1..6, with call = level >= 4);
* TP = generated called generated, FN = generated called real, FP = real called generated, TN = real called real.
  Sensitivity = generated detected, specificity = real accepted, "fool rate" = FN / (TP + FN).

Every public function returns plain JSON-serialisable data (``dict``/``list``/``float``/``int``/``str``/``None``);
undefined quantities are ``None`` and never NaN or infinity, so ``json.dumps(..., allow_nan=False)`` succeeds.

References used below:

* Clopper CJ, Pearson ES (1934). Biometrika 26:404-413 (exact interval).
* Wilson EB (1927). JASA 22:209-212 (score interval).
* Schuirmann DJ (1987). J Pharmacokinet Biopharm 15:657-680 (TOST).
* DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Biometrics 44:837-845 (AUC variance, structural components).
* Hanley JA, McNeil BJ (1982). Radiology 143:29-36 (empirical AUC; worked CT example, AUC 0.893).
* Obuchowski NA, Rockette HE (1995). Commun Stat Simul Comput 24:285-308 (OR model).
* Hillis SL (2007). Stat Med 26:596-619 (denominator df; single-test CI);
  Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS (2005). Stat Med 24:1579-1607 (unified DBM/OR framework).
  Cross-checked against RJafroc ``StORHAnalysis`` (``ciAvgRdrEachTrt``) and MRMCaov.
* Efron B, Stein C (1981). Ann Stat 9:586-596 (jackknife variance, factor (K-1)/K on the covariance of
  leave-one-out values).
* Fleiss JL (1971). Psychol Bull 76:378-382; Cohen J (1960). Educ Psychol Meas 20:37-46.
* Hautus MJ (1995). Behav Res Methods 27:46-51 (log-linear correction for d').
* Macmillan NA, Creelman CD (2005). Detection Theory: A User's Guide, 2nd ed. (d', criterion c).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats as sps
from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

CONVENTION = {
    "positive_class": "generated",
    "truth": "1 = generated, 0 = real",
    "call": "1 = called generated, 0 = called real",
    "score": "higher = more confident the image is generated",
    "confusion_matrix": "TP = generated called generated, FN = generated called real, "
    "FP = real called generated, TN = real called real",
}


# --------------------------------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingRow:
    """One rating in long format: one rater's answer on one image (case)."""

    rater: str
    case: str
    truth: int  # 1 generated, 0 real
    call: int  # 1 called generated, 0 called real
    score: float | None = None  # higher = more confident generated
    position: int | None = None  # trial index in the rater's sequence
    duration_ms: float | None = None
    generator: str | None = None  # None for real images
    rater_specialty: str | None = None
    rater_experience: float | None = None  # years

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> RatingRow:
        """Build a row from a dict with the field names above (extra keys are ignored)."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: m[k] for k in names if k in m})


def score_from_confidence(call: int, confidence: int) -> float:
    """Forced choice + confidence 1..5 -> a 10-level score: +c if called generated, -c if called real."""
    if confidence < 1:
        raise ValueError("confidence must be >= 1")
    return float(confidence if call else -confidence)


def call_and_score_from_six_point(level: int) -> tuple[int, float]:
    """6-point scale (1 "certainly real" ... 6 "certainly generated") -> (call, score); call = level >= 4."""
    if not 1 <= level <= 6:
        raise ValueError("six-point level must be in 1..6")
    return int(level >= 4), float(level)


@dataclass
class Ratings:
    """Validated, de-duplicated ratings as parallel arrays (one entry per rater x case).

    Build with :func:`prepare_ratings`. ``repeats`` holds (rater, case, truth, first call, repeat call) for every
    extra rating of a (rater, case) pair already seen; only the first rating (lowest position, then input order)
    enters the main analyses so that a re-read image does not count twice.
    """

    rater: np.ndarray  # (N,) str
    case: np.ndarray  # (N,) str
    truth: np.ndarray  # (N,) int
    call: np.ndarray  # (N,) int
    score: np.ndarray  # (N,) float, NaN = missing
    position: np.ndarray  # (N,) float, NaN = missing
    duration_ms: np.ndarray  # (N,) float, NaN = missing
    case_generator: dict[str, str | None]
    rater_specialty: dict[str, str | None]
    rater_experience: dict[str, float | None]
    repeats: list[tuple[str, str, int, int, int]] = field(default_factory=list)

    @property
    def correct(self) -> np.ndarray:
        return (self.truth == self.call).astype(int)

    @property
    def raters(self) -> list[str]:
        return sorted(set(self.rater.tolist()))

    @property
    def cases(self) -> list[str]:
        return sorted(set(self.case.tolist()))


RowsLike = Sequence[RatingRow] | Sequence[Mapping[str, Any]] | Ratings


def _optional_float(x: Any) -> float:
    if x is None:
        return math.nan
    v = float(x)
    return v if math.isfinite(v) else math.nan


def _binary(x: Any, name: str) -> int:
    if isinstance(x, bool | np.bool_):
        return int(x)
    if x in (0, 1):
        return int(x)
    raise ValueError(f"{name} must be 0 or 1, got {x!r}")


def _position_key(position: Any) -> tuple[bool, float]:
    """Sort key: rows with a position first, in position order; rows without one after them."""
    p = _optional_float(position)
    return (math.isnan(p), 0.0 if math.isnan(p) else p)


def prepare_ratings(rows: RowsLike) -> Ratings:
    """Validate long-format rows (``RatingRow`` or dicts) and keep the first rating per (rater, case).

    Raises ``ValueError`` for empty input, truth/call outside {0, 1}, or a case whose truth or generator differs
    between rows (that is a data-integrity error, not something to average over).
    """
    if isinstance(rows, Ratings):
        return rows
    parsed = [r if isinstance(r, RatingRow) else RatingRow.from_mapping(r) for r in rows]
    if not parsed:
        raise ValueError("no ratings: statistics need at least one rating")

    case_truth: dict[str, int] = {}
    case_generator: dict[str, str | None] = {}
    specialty: dict[str, str | None] = {}
    experience: dict[str, float | None] = {}
    for r in parsed:
        truth = _binary(r.truth, "truth")
        _binary(r.call, "call")
        case, rater = str(r.case), str(r.rater)
        if case_truth.setdefault(case, truth) != truth:
            raise ValueError(f"case {case!r} has conflicting truth values")
        gen = None if r.generator is None else str(r.generator)
        if case in case_generator and case_generator[case] != gen:
            raise ValueError(f"case {case!r} has conflicting generators")
        case_generator[case] = gen
        # Rater attributes are denormalised onto every row; the first non-empty value wins.
        if specialty.get(rater) is None:
            specialty[rater] = None if r.rater_specialty in (None, "") else str(r.rater_specialty)
        if experience.get(rater) is None:
            exp = _optional_float(r.rater_experience)
            experience[rater] = None if math.isnan(exp) else exp

    # First rating per (rater, case): lowest position, then input order (a stable sort keeps input order).
    order = sorted(
        range(len(parsed)),
        key=lambda i: _position_key(parsed[i].position),
    )
    first: dict[tuple[str, str], int] = {}
    repeats: list[tuple[str, str, int, int, int]] = []
    for i in order:
        key = (str(parsed[i].rater), str(parsed[i].case))
        if key in first:
            j = first[key]
            repeats.append((key[0], key[1], int(parsed[i].truth), int(parsed[j].call), int(parsed[i].call)))
        else:
            first[key] = i
    keep = sorted(first.values())
    kept = [parsed[i] for i in keep]
    return Ratings(
        rater=np.array([str(r.rater) for r in kept], dtype=object),
        case=np.array([str(r.case) for r in kept], dtype=object),
        truth=np.array([int(r.truth) for r in kept], dtype=int),
        call=np.array([int(r.call) for r in kept], dtype=int),
        score=np.array([_optional_float(r.score) for r in kept], dtype=float),
        position=np.array([_optional_float(r.position) for r in kept], dtype=float),
        duration_ms=np.array([_optional_float(r.duration_ms) for r in kept], dtype=float),
        case_generator=case_generator,
        rater_specialty=specialty,
        rater_experience=experience,
        repeats=repeats,
    )


# --------------------------------------------------------------------------------------------------------------------
# JSON hygiene
# --------------------------------------------------------------------------------------------------------------------


def _jsonable(x: Any) -> Any:
    """Recursively convert NumPy scalars/arrays to Python and NaN/inf to None (JSON has no NaN)."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | np.ndarray):
        return [_jsonable(v) for v in x]
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        v = float(x)
        return v if math.isfinite(v) else None
    return x


def _f(x: float | None) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------------------------------------------------
# 1. Binary performance: confusion matrix, proportions, binomial and equivalence tests
# --------------------------------------------------------------------------------------------------------------------


def confusion_matrix(truth: Iterable[int], call: Iterable[int]) -> dict[str, int]:
    """TP, FN, FP, TN with positive = generated (truth 1) and a positive call = "called generated"."""
    t = np.asarray(list(truth), dtype=int)
    c = np.asarray(list(call), dtype=int)
    if t.shape != c.shape:
        raise ValueError("truth and call must have the same length")
    return {
        "tp": int(np.sum((t == 1) & (c == 1))),
        "fn": int(np.sum((t == 1) & (c == 0))),
        "fp": int(np.sum((t == 0) & (c == 1))),
        "tn": int(np.sum((t == 0) & (c == 0))),
    }


def proportion_interval(k: int, n: int, *, alpha: float = 0.05) -> dict[str, Any]:
    """Proportion k/n with exact Clopper-Pearson and Wilson score (1 - alpha) intervals.

    Uses ``statsmodels.stats.proportion.proportion_confint`` methods 'beta' (Clopper & Pearson 1934) and
    'wilson' (Wilson 1927). For k = 0 (k = n) the lower (upper) bound is exactly 0 (1). n = 0 gives Nones.
    """
    if n == 0:
        return {"k": 0, "n": 0, "estimate": None, "ci_clopper_pearson": None, "ci_wilson": None}
    out: dict[str, Any] = {"k": int(k), "n": int(n), "estimate": k / n}
    for key, method in (("ci_clopper_pearson", "beta"), ("ci_wilson", "wilson")):
        lo, hi = proportion_confint(k, n, alpha=alpha, method=method)
        # The closed forms give exactly 0 / 1 at the edges; floating point leaves 0.9999999999999999.
        lo = 0.0 if k == 0 else min(max(float(lo), 0.0), 1.0)
        hi = 1.0 if k == n else min(max(float(hi), 0.0), 1.0)
        out[key] = [lo, hi]
    return out


def _verdict(equivalent: bool, different: bool) -> str:
    """Map the equivalence (TOST) and difference (two-sided) decisions to one word.

    "Not significant" is not "indistinguishable" (note §5.4): only a passed equivalence test earns that word.
    """
    if equivalent and different:
        # Detectable with this much data, but by less than the pre-chosen margin.
        return "distinguishable_within_margin"
    if equivalent:
        return "indistinguishable"
    if different:
        return "distinguishable"
    return "inconclusive"


def chance_tests(k: int, n: int, *, margin: float = 0.10, alpha: float = 0.05, null: float = 0.5) -> dict[str, Any]:
    """Exact tests of accuracy k/n against chance (0.5): two-sided binomial test and TOST equivalence.

    * two-sided exact binomial test (``scipy.stats.binomtest``): rejects -> "different from chance"; two-sided
      because below-chance accuracy is informative too (the research note, §4 pattern 4).
    * TOST (Schuirmann 1987) with bounds [null - margin, null + margin]: p_lower = P(X >= k | p = null - margin)
      (H0: p <= lower), p_upper = P(X <= k | p = null + margin) (H0: p >= upper), p_tost = max of the two;
      equivalent iff p_tost < alpha.
    * The same decision from the interval: equivalent iff the (1 - 2 alpha) Clopper-Pearson interval lies strictly
      inside the bounds. Both are reported; they agree by construction (the CP bounds are the inverted one-sided
      exact tests), and the test-suite checks it over a grid.
    """
    if not 0 < margin < min(null, 1 - null):
        raise ValueError("margin must be in (0, 0.5)")
    if not 0 < alpha < 0.5:
        raise ValueError("alpha must be in (0, 0.5)")
    low, upp = null - margin, null + margin
    if n == 0:
        return {
            "null": null,
            "margin": margin,
            "equivalence_bounds": [low, upp],
            "p_two_sided": None,
            "p_tost": None,
            "p_tost_lower": None,
            "p_tost_upper": None,
            "ci_tost_clopper_pearson": None,
            "equivalent_to_chance": False,
            "equivalent_by_ci": False,
            "different_from_chance": False,
            "direction": None,
            "verdict": "no_data",
        }
    p_two = sps.binomtest(k, n, null, alternative="two-sided").pvalue
    p_lower = sps.binomtest(k, n, low, alternative="greater").pvalue
    p_upper = sps.binomtest(k, n, upp, alternative="less").pvalue
    p_tost = max(p_lower, p_upper)
    ci = proportion_interval(k, n, alpha=2 * alpha)["ci_clopper_pearson"]
    equivalent = bool(p_tost < alpha)
    different = bool(p_two < alpha)
    return {
        "null": null,
        "margin": margin,
        "equivalence_bounds": [low, upp],
        "p_two_sided": float(p_two),
        "p_tost": float(p_tost),
        "p_tost_lower": float(p_lower),
        "p_tost_upper": float(p_upper),
        "ci_tost_clopper_pearson": ci,
        "equivalent_to_chance": equivalent,
        "equivalent_by_ci": bool(ci[0] > low and ci[1] < upp),
        "different_from_chance": different,
        "direction": ("above" if k / n > null else "below") if different else None,
        "verdict": _verdict(equivalent, different),
    }


def binary_performance(
    truth: Iterable[int], call: Iterable[int], *, margin: float = 0.10, alpha: float = 0.05
) -> dict[str, Any]:
    """Confusion matrix; accuracy, sensitivity, specificity, fool rate and false-alarm rate with CP and Wilson
    intervals; exact binomial and TOST tests of accuracy against 0.5 (see :func:`chance_tests`).

    Computed on whatever ratings are passed: pooled over raters this is a plain binomial that ignores the
    clustering of decisions by reader and by image (note §5.3); use :func:`mrmc_accuracy` for an interval that
    generalises to new readers and new images.
    """
    cm = confusion_matrix(truth, call)
    tp, fn, fp, tn = cm["tp"], cm["fn"], cm["fp"], cm["tn"]
    n = tp + fn + fp + tn
    return {
        "n": n,
        "n_generated": tp + fn,
        "n_real": fp + tn,
        "confusion_matrix": cm,
        "accuracy": proportion_interval(tp + tn, n, alpha=alpha),
        "sensitivity": proportion_interval(tp, tp + fn, alpha=alpha),
        "specificity": proportion_interval(tn, tn + fp, alpha=alpha),
        "fool_rate": proportion_interval(fn, tp + fn, alpha=alpha),
        "false_alarm_rate": proportion_interval(fp, fp + tn, alpha=alpha),
        "called_generated_rate": proportion_interval(tp + fp, n, alpha=alpha),
        "chance": chance_tests(tp + tn, n, margin=margin, alpha=alpha),
    }


# --------------------------------------------------------------------------------------------------------------------
# 5. Signal detection
# --------------------------------------------------------------------------------------------------------------------


def signal_detection(hits: int, misses: int, false_alarms: int, correct_rejections: int) -> dict[str, Any]:
    """d' and criterion c (Macmillan & Creelman 2005) with the log-linear correction (Hautus 1995).

    Signal = generated image, "yes" = called generated. Corrected rates H = (hits + 0.5) / (n_generated + 1),
    F = (false_alarms + 0.5) / (n_real + 1) (applied to every rater so that 0 and 1 rates stay finite and raters
    stay comparable); d' = z(H) - z(F), c = -(z(H) + z(F)) / 2. c > 0 means a bias toward answering "real",
    which the note (§6.2, §5.6) says to expect. Returns Nones when a class has no ratings.
    """
    n_sig, n_noise = hits + misses, false_alarms + correct_rejections
    if n_sig == 0 or n_noise == 0:
        return {
            "d_prime": None,
            "criterion_c": None,
            "hit_rate": None,
            "false_alarm_rate": None,
            "correction": "log-linear (Hautus 1995)",
        }
    h = (hits + 0.5) / (n_sig + 1)
    fa = (false_alarms + 0.5) / (n_noise + 1)
    zh, zf = sps.norm.ppf(h), sps.norm.ppf(fa)
    return {
        "d_prime": float(zh - zf),
        "criterion_c": float(-(zh + zf) / 2),
        "hit_rate": float(h),
        "false_alarm_rate": float(fa),
        "correction": "log-linear (Hautus 1995)",
    }


# --------------------------------------------------------------------------------------------------------------------
# 2a. ROC AUC and DeLong
# --------------------------------------------------------------------------------------------------------------------


def _psi(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Mann-Whitney kernel (m, n): 1 if generated scored higher than real, 1/2 on ties, 0 otherwise."""
    d = pos[:, None] - neg[None, :]
    return (d > 0) + 0.5 * (d == 0)


def roc_auc(truth: Iterable[int], score: Iterable[float]) -> float | None:
    """Empirical (trapezoidal) ROC AUC = Mann-Whitney U / (m n), ties counted 1/2 (Hanley & McNeil 1982).

    None when either class is empty.
    """
    t = np.asarray(list(truth), dtype=int)
    s = np.asarray(list(score), dtype=float)
    pos, neg = s[t == 1], s[t == 0]
    if pos.size == 0 or neg.size == 0:
        return None
    return float(_psi(pos, neg).mean())


def delong_covariance(truth: Iterable[int], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their DeLong covariance matrix for several readers scoring the same cases.

    ``scores`` is (r, n) for r readers on n cases; truth (n,). With m generated and k real cases, the structural
    components are V10[a, i] = mean_j psi(X_ai, Y_aj) and V01[a, j] = mean_i psi(X_ai, Y_aj); then
    S10 = cov(V10) and S01 = cov(V01) across cases (ddof = 1) and Cov(AUC) = S10 / m + S01 / k
    (DeLong et al. 1988, eq. 4-5). Needs m >= 2 and k >= 2.
    """
    t = np.asarray(list(truth), dtype=int)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    pos, neg = s[:, t == 1], s[:, t == 0]
    m, k = pos.shape[1], neg.shape[1]
    if m < 2 or k < 2:
        raise ValueError("DeLong needs at least 2 generated and 2 real cases")
    psi = np.stack([_psi(pos[a], neg[a]) for a in range(s.shape[0])])  # (r, m, k)
    v10 = psi.mean(axis=2)  # (r, m)
    v01 = psi.mean(axis=1)  # (r, k)
    aucs = v10.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10, ddof=1)) / m + np.atleast_2d(np.cov(v01, ddof=1)) / k
    return aucs, cov


def delong_auc(truth: Iterable[int], score: Iterable[float], *, alpha: float = 0.05) -> dict[str, Any] | None:
    """One reader's empirical AUC with DeLong standard error and a normal (1 - alpha) interval clipped to [0, 1].

    Returns None when there are no scores for one of the classes; ``se``/``ci`` are None when a class has fewer
    than 2 scored cases (the structural-component variances need ddof = 1).
    """
    t = np.asarray(list(truth), dtype=int)
    s = np.asarray(list(score), dtype=float)
    ok = ~np.isnan(s)
    t, s = t[ok], s[ok]
    auc = roc_auc(t, s)
    if auc is None:
        return None
    m, k = int((t == 1).sum()), int((t == 0).sum())
    out: dict[str, Any] = {
        "auc": auc,
        "n_generated": m,
        "n_real": k,
        "se": None,
        "ci": None,
        "method": "empirical AUC, DeLong et al. (1988) variance",
    }
    if m >= 2 and k >= 2:
        _, cov = delong_covariance(t, s[None, :])
        se = math.sqrt(max(float(cov[0, 0]), 0.0))
        z = sps.norm.ppf(1 - alpha / 2)
        out["se"] = se
        out["ci"] = [max(auc - z * se, 0.0), min(auc + z * se, 1.0)]
    return _jsonable(out)


# --------------------------------------------------------------------------------------------------------------------
# 2b. Obuchowski-Rockette (Hillis) for a single test, jackknife covariances
# --------------------------------------------------------------------------------------------------------------------


def jackknife_accuracy(correct: np.ndarray) -> np.ndarray:
    """Leave-one-case-out accuracies (r, n) from a 0/1 correctness matrix (r readers, n cases)."""
    c = np.atleast_2d(np.asarray(correct, dtype=float))
    n = c.shape[1]
    if n < 2:
        raise ValueError("jackknife needs at least 2 cases")
    return (c.sum(axis=1, keepdims=True) - c) / (n - 1)


def jackknife_auc(truth: Iterable[int], scores: np.ndarray) -> np.ndarray:
    """Leave-one-case-out empirical AUCs (r, n) for r readers on n cases (needs >= 2 cases per class).

    Dropping generated case i removes row i of the kernel: (S - rowsum_i) / ((m - 1) k); dropping real case j
    removes column j: (S - colsum_j) / (m (k - 1)).
    """
    t = np.asarray(list(truth), dtype=int)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    pi, ni = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    m, k = pi.size, ni.size
    if m < 2 or k < 2:
        raise ValueError("jackknife AUC needs at least 2 generated and 2 real cases")
    out = np.empty_like(s)
    for a in range(s.shape[0]):
        psi = _psi(s[a, pi], s[a, ni])
        total = psi.sum()
        out[a, pi] = (total - psi.sum(axis=1)) / ((m - 1) * k)
        out[a, ni] = (total - psi.sum(axis=0)) / (m * (k - 1))
    return out


def jackknife_covariance(leave_one_out: np.ndarray) -> np.ndarray:
    """Jackknife covariance (r, r) of reader figures of merit from leave-one-case-out values (r, n).

    Cov_jj' = (n - 1) / n * sum_k (theta_j(k) - theta_j(.)) (theta_j'(k) - theta_j'(.)) (Efron & Stein 1981),
    i.e. the ddof = 1 sample covariance times (n - 1)^2 / n, as in RJafroc/MRMCaov. For accuracy this reduces to
    the sample covariance of the 0/1 correctness vectors divided by n.
    """
    j = np.atleast_2d(np.asarray(leave_one_out, dtype=float))
    n = j.shape[1]
    return np.atleast_2d(np.cov(j, ddof=1)) * (n - 1) ** 2 / n


def _clip01(v: float) -> float:
    return min(max(v, 0.0), 1.0)


def _interval_inference(
    estimate: float, se: float, df: float, *, alpha: float, margin: float, null: float
) -> dict[str, Any]:
    """t (or normal, df = inf) interval, two-sided test against ``null`` and TOST within null +/- margin.

    Decisions come from the intervals: different iff the (1 - alpha) CI excludes null; equivalent iff the
    (1 - 2 alpha) CI lies strictly inside the bounds. With se > 0 these equal the p-value decisions exactly.
    """
    low, upp = null - margin, null + margin
    dist = sps.norm if math.isinf(df) else sps.t(df)
    if se > 0:
        q, q2 = dist.ppf(1 - alpha / 2), dist.ppf(1 - alpha)
        ci = [estimate - q * se, estimate + q * se]
        ci_tost = [estimate - q2 * se, estimate + q2 * se]
        p_two = float(2 * dist.sf(abs(estimate - null) / se))
        p_lower = float(dist.sf((estimate - low) / se))
        p_upper = float(dist.cdf((estimate - upp) / se))
        p_tost: float | None = max(p_lower, p_upper)
    else:
        # No variability at all (e.g. every reader perfect on every case): the interval is the point.
        ci, ci_tost = [estimate, estimate], [estimate, estimate]
        p_two = p_lower = p_upper = p_tost = None
    different = bool(ci[0] > null or ci[1] < null)
    equivalent = bool(ci_tost[0] > low and ci_tost[1] < upp)
    return {
        # Accuracy and AUC live in [0, 1]; the symmetric t interval can overshoot, so report it clipped.
        "ci": [_clip01(ci[0]), _clip01(ci[1])],
        "ci_level": 1 - alpha,
        "ci_tost": [_clip01(ci_tost[0]), _clip01(ci_tost[1])],
        "p_two_sided": p_two,
        "p_tost": p_tost,
        "p_tost_lower": p_lower,
        "p_tost_upper": p_upper,
        "equivalence_bounds": [low, upp],
        "equivalent_to_chance": equivalent,
        "different_from_chance": different,
        "direction": ("above" if estimate > null else "below") if different else None,
        "verdict": _verdict(equivalent, different),
    }


def or_single_test(
    foms: Sequence[float] | np.ndarray,
    cov: np.ndarray,
    *,
    alpha: float = 0.05,
    margin: float = 0.10,
    null: float = 0.5,
) -> dict[str, Any]:
    """Reader-averaged figure of merit for ONE test (human readers vs truth), random readers and random cases.

    Obuchowski-Rockette model theta_j = mu + R_j + e_j, with Var(e_j) = Var (case sampling within a reader) and
    Cov(e_j, e_j') = Cov2 (two readers on the same cases). Inputs: per-reader figures of merit theta_j (r,) and
    their case-sampling covariance matrix (r, r) (jackknife or DeLong). Then (Hillis 2007, single-test case;
    RJafroc ``ciAvgRdrEachTrt``):

    * theta_bar = mean_j theta_j
    * MS_R = sum_j (theta_j - theta_bar)^2 / (r - 1)
    * Var  = mean of the diagonal of cov; Cov2 = mean of the off-diagonal entries
    * random readers, random cases:  SE^2 = (MS_R + r * max(Cov2, 0)) / r,
      df = (MS_R + r * max(Cov2, 0))^2 / (MS_R^2 / (r - 1)); CI theta_bar +/- t_{1-alpha/2, df} SE
      (because E[MS_R] = sigma_R^2 + Var - Cov2 and Var(theta_bar) = sigma_R^2 / r + (Var + (r - 1) Cov2) / r,
      so Var(theta_bar) = (E[MS_R] + r Cov2) / r)
    * fixed readers, random cases:    SE^2 = (Var + (r - 1) Cov2) / r, normal quantile (df = inf)
    * reader variance component sigma_R^2 = MS_R - Var + Cov2 (can come out negative; reported as is)

    MS_R = 0 with Cov2 > 0 gives df = inf (normal quantile; ``df`` is reported as None). Needs r >= 2.
    """
    theta = np.asarray(foms, dtype=float)
    c = np.atleast_2d(np.asarray(cov, dtype=float))
    r = theta.size
    if r < 2:
        raise ValueError("Obuchowski-Rockette needs at least 2 readers")
    if c.shape != (r, r):
        raise ValueError("cov must be (r, r)")
    est = float(theta.mean())
    ms_r = float(theta.var(ddof=1))
    var = float(np.mean(np.diag(c)))
    cov2 = float((c.sum() - np.trace(c)) / (r * (r - 1)))
    denom = ms_r + r * max(cov2, 0.0)
    se = math.sqrt(max(denom, 0.0) / r)
    df = denom**2 / (ms_r**2 / (r - 1)) if ms_r > 0 else math.inf
    notes = []
    if cov2 < 0:
        notes.append("Cov2 < 0 was truncated at 0 (Hillis 2007), so the interval reflects reader variability only.")
    if math.isinf(df) and se > 0:
        notes.append("MS_R = 0: denominator df is infinite, normal quantile used.")
    if se == 0:
        notes.append("No reader or case variability: the interval collapses to the estimate.")
    frrc_var = max((var + (r - 1) * cov2) / r, 0.0)
    frrc_se = math.sqrt(frrc_var)
    rrrc = _interval_inference(est, se, df, alpha=alpha, margin=margin, null=null)
    frrc = _interval_inference(est, frrc_se, math.inf, alpha=alpha, margin=margin, null=null)
    return _jsonable(
        {
            "estimate": est,
            "n_readers": r,
            "reader_values": theta.tolist(),
            "ms_r": ms_r,
            "var": var,
            "cov2": cov2,
            "sigma2_reader": ms_r - var + cov2,
            "se": se,
            "df": None if math.isinf(df) else df,
            **rrrc,
            "fixed_readers": {"se": frrc_se, "df": None, "ci": frrc["ci"], "verdict": frrc["verdict"]},
            "method": "Obuchowski-Rockette / Hillis (2007) single test, random readers and random cases",
            "notes": notes,
        }
    )


def _crossed(
    data: Ratings, *, need_score: bool
) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray, int]:
    """Reader x case matrices over the cases every included reader rated (OR needs a fully crossed design).

    Returns readers, cases, truth (n,), calls (r, n), scores (r, n), and how many cases were dropped.
    """
    mask = ~np.isnan(data.score) if need_score else np.ones(data.rater.size, dtype=bool)
    readers = sorted(set(data.rater[mask].tolist()))
    per_reader: dict[str, set[str]] = defaultdict(set)
    for rr, cc in zip(data.rater[mask], data.case[mask], strict=True):
        per_reader[rr].add(cc)
    all_cases = set(data.case[mask].tolist())
    common = sorted(set.intersection(*(per_reader[rr] for rr in readers))) if readers else []
    ri = {rr: i for i, rr in enumerate(readers)}
    ci = {cc: i for i, cc in enumerate(common)}
    calls = np.zeros((len(readers), len(common)), dtype=int)
    scores = np.full((len(readers), len(common)), np.nan)
    truth = np.zeros(len(common), dtype=int)
    for rr, cc, t, cl, sc in zip(
        data.rater[mask], data.case[mask], data.truth[mask], data.call[mask], data.score[mask], strict=True
    ):
        if cc in ci:
            calls[ri[rr], ci[cc]] = cl
            scores[ri[rr], ci[cc]] = sc
            truth[ci[cc]] = t
    return readers, common, truth, calls, scores, len(all_cases) - len(common)


def mrmc_accuracy(rows: RowsLike, *, alpha: float = 0.05, margin: float = 0.10) -> dict[str, Any] | None:
    """Reader-averaged accuracy with an Obuchowski-Rockette interval (random readers, random cases).

    Accuracy is the figure of merit; its case-sampling covariance comes from the jackknife over cases
    (:func:`jackknife_accuracy`, :func:`jackknife_covariance`), then :func:`or_single_test`. Only cases read by
    every reader are used. With one reader, falls back to the case-only exact binomial (Clopper-Pearson) interval
    and TOST. Returns None when fewer than 2 common cases remain.
    """
    data = prepare_ratings(rows)
    readers, cases, truth, calls, _, dropped = _crossed(data, need_score=False)
    base = {
        "figure_of_merit": "accuracy",
        "readers": readers,
        "n_cases": len(cases),
        "n_generated": int(truth.sum()),
        "n_real": int(len(cases) - truth.sum()),
        "n_cases_dropped_not_crossed": dropped,
    }
    if len(cases) < 2:
        return None
    correct = (calls == truth[None, :]).astype(int)
    if len(readers) == 1:
        k, n = int(correct.sum()), correct.size
        prop = proportion_interval(k, n, alpha=alpha)
        tests = chance_tests(k, n, margin=margin, alpha=alpha)
        return _jsonable(
            {
                **base,
                "estimate": prop["estimate"],
                "n_readers": 1,
                "reader_values": [prop["estimate"]],
                "se": math.sqrt(prop["estimate"] * (1 - prop["estimate"]) / n),
                "df": None,
                "ci": prop["ci_clopper_pearson"],
                "ci_level": 1 - alpha,
                "ci_tost": tests["ci_tost_clopper_pearson"],
                **{
                    key: tests[key]
                    for key in (
                        "p_two_sided",
                        "p_tost",
                        "p_tost_lower",
                        "p_tost_upper",
                        "equivalence_bounds",
                        "equivalent_to_chance",
                        "different_from_chance",
                        "direction",
                        "verdict",
                    )
                },
                "method": "single reader: exact binomial over cases (Clopper-Pearson), no reader generalisation",
                "notes": [
                    "Only one reader: the interval covers case sampling only and says nothing about other readers."
                ],
            }
        )
    cov = jackknife_covariance(jackknife_accuracy(correct))
    res = or_single_test(correct.mean(axis=1), cov, alpha=alpha, margin=margin)
    res["covariance_method"] = "jackknife over cases"
    if dropped:
        res["notes"].append(f"{dropped} case(s) not read by every reader were left out (OR needs a crossed design).")
    return _jsonable({**base, **res})


def mrmc_auc(
    rows: RowsLike,
    *,
    alpha: float = 0.05,
    margin: float = 0.10,
    covariance: Literal["jackknife", "delong"] = "jackknife",
) -> dict[str, Any] | None:
    """Reader-averaged empirical ROC AUC with an Obuchowski-Rockette interval (random readers, random cases).

    Uses readers with scores and the cases every one of them scored. The case-sampling covariance of the reader
    AUCs is the jackknife over cases (default, as in MRMCaov's ``cov = jackknife``) or DeLong's structural
    components; then :func:`or_single_test`. Equivalence uses AUC 0.5 +/- margin. One reader: DeLong interval
    (case-only). None without scores or with fewer than 2 scored cases per class.
    """
    data = prepare_ratings(rows)
    if np.all(np.isnan(data.score)):
        return None
    readers, cases, truth, _, scores, dropped = _crossed(data, need_score=True)
    m, k = int(truth.sum()), int(len(cases) - truth.sum())
    if m < 2 or k < 2:
        return None
    base = {
        "figure_of_merit": "auc",
        "readers": readers,
        "n_cases": len(cases),
        "n_generated": m,
        "n_real": k,
        "n_cases_dropped_not_crossed": dropped,
    }
    if len(readers) == 1:
        aucs, cov = delong_covariance(truth, scores)
        est, se = float(aucs[0]), math.sqrt(max(float(cov[0, 0]), 0.0))
        inf = _interval_inference(est, se, math.inf, alpha=alpha, margin=margin, null=0.5)
        return _jsonable(
            {
                **base,
                "estimate": est,
                "n_readers": 1,
                "reader_values": [est],
                "se": se,
                "df": None,
                **inf,
                "method": "single reader: DeLong (1988) interval over cases, no reader generalisation",
                "covariance_method": "delong",
                "notes": [
                    "Only one reader: the interval covers case sampling only and says nothing about other readers."
                ],
            }
        )
    if covariance == "delong":
        aucs, cov = delong_covariance(truth, scores)
    else:
        aucs = np.array([roc_auc(truth, s) for s in scores])
        cov = jackknife_covariance(jackknife_auc(truth, scores))
    res = or_single_test(aucs, cov, alpha=alpha, margin=margin)
    res["covariance_method"] = "jackknife over cases" if covariance == "jackknife" else "delong"
    if dropped:
        res["notes"].append(f"{dropped} case(s) not scored by every reader were left out (OR needs a crossed design).")
    return _jsonable({**base, **res})


# --------------------------------------------------------------------------------------------------------------------
# 3. Agreement
# --------------------------------------------------------------------------------------------------------------------


def fleiss_kappa_table(table: np.ndarray) -> float | None:
    """Fleiss' kappa (Fleiss 1971) from a subjects x categories count table with equal row sums.

    Wraps ``statsmodels.stats.inter_rater.fleiss_kappa(method='fleiss')``. None when chance agreement is 1
    (everybody used one category), where kappa is 0/0.
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError("table must be subjects x categories")
    p = t.sum(axis=0) / t.sum()
    if np.isclose(np.sum(p**2), 1.0):
        return None
    return float(_sm_fleiss_kappa(t, method="fleiss"))


def _fleiss_binary_many(n_gen: np.ndarray, m: int) -> np.ndarray:
    """Vectorised binary Fleiss' kappa over bootstrap replicates; n_gen (B, N) = "generated" calls per subject."""
    n_real = m - n_gen
    p_i = (n_gen * (n_gen - 1) + n_real * (n_real - 1)) / (m * (m - 1))
    p_bar = p_i.mean(axis=1)
    p1 = n_gen.mean(axis=1) / m
    pe = p1**2 + (1 - p1) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isclose(pe, 1.0), np.nan, (p_bar - pe) / (1 - pe))


def cohens_kappa_binary(a: Iterable[int], b: Iterable[int]) -> float | None:
    """Cohen's (1960) kappa for two raters' binary calls on the same cases: (p_o - p_e) / (1 - p_e).

    p_e = p_a p_b + (1 - p_a)(1 - p_b) from each rater's share of "generated" calls. None when p_e = 1 (both
    raters gave one and the same answer throughout) or there are no cases.
    """
    x = np.asarray(list(a), dtype=int)
    y = np.asarray(list(b), dtype=int)
    if x.size == 0:
        return None
    po = float(np.mean(x == y))
    pa, pb = x.mean(), y.mean()
    pe = float(pa * pb + (1 - pa) * (1 - pb))
    if math.isclose(pe, 1.0):
        return None
    return (po - pe) / (1 - pe)


def agreement(rows: RowsLike, *, alpha: float = 0.05, n_bootstrap: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Inter-rater agreement on the binary call: Fleiss' kappa, pairwise Cohen's kappa, percent agreement.

    * Fleiss' kappa over the cases rated by the most common number m >= 2 of raters (Fleiss' kappa needs the same
      number of ratings per case, not the same raters); with a percentile bootstrap CI resampling cases with a
      seeded generator (statsmodels gives no variance, note §3.6). Replicates where kappa is undefined are
      skipped and counted.
    * ``percent_agreement`` (a proportion, 0..1) = mean over those cases of the share of agreeing rater pairs
      (Fleiss' P-bar); ``unanimous_share`` = share of cases where all m raters agreed.
    * Pairwise Cohen's kappa on the cases both raters rated, and their mean (Light's kappa).
    * Kappa is unstable near chance and with skewed marginals (note §5.7); read it with the accuracy.
    """
    data = prepare_ratings(rows)
    notes: list[str] = []
    per_case: dict[str, list[int]] = defaultdict(list)
    for cc, cl in zip(data.case, data.call, strict=True):
        per_case[cc].append(int(cl))
    counts = Counter(len(v) for v in per_case.values() if len(v) >= 2)
    fleiss: dict[str, Any] = {
        "kappa": None,
        "ci": None,
        "n_cases": 0,
        "raters_per_case": None,
        "n_bootstrap_undefined": None,
    }
    percent = unanimous = None
    if not counts:
        notes.append("No case was rated by two or more raters: agreement is undefined.")
    else:
        m = max(counts, key=lambda c: (counts[c], c))
        used = sorted(cc for cc, v in per_case.items() if len(v) == m)
        n_gen = np.array([sum(per_case[cc]) for cc in used], dtype=float)
        table = np.column_stack([m - n_gen, n_gen])
        kappa = fleiss_kappa_table(table)
        p_i = (n_gen * (n_gen - 1) + (m - n_gen) * (m - n_gen - 1)) / (m * (m - 1))
        percent = float(p_i.mean())
        unanimous = float(np.mean((n_gen == 0) | (n_gen == m)))
        fleiss.update({"kappa": kappa, "n_cases": len(used), "raters_per_case": m})
        if len(used) < len(per_case):
            notes.append(f"Fleiss' kappa uses the {len(used)} case(s) rated by {m} raters.")
        if kappa is None:
            notes.append("All raters gave the same answer on every case: kappa is undefined (0/0).")
        elif len(used) >= 2 and n_bootstrap > 0:
            rng = np.random.default_rng(seed)
            idx = rng.integers(0, len(used), size=(n_bootstrap, len(used)))
            boot = _fleiss_binary_many(n_gen[idx], m)
            ok = boot[~np.isnan(boot)]
            fleiss["n_bootstrap_undefined"] = int(n_bootstrap - ok.size)
            if ok.size:
                fleiss["ci"] = [float(np.quantile(ok, alpha / 2)), float(np.quantile(ok, 1 - alpha / 2))]
            fleiss["ci_method"] = f"percentile bootstrap over cases, {n_bootstrap} replicates, seed {seed}"

    pairs = []
    by_rater = {rr: {} for rr in data.raters}
    for rr, cc, cl in zip(data.rater, data.case, data.call, strict=True):
        by_rater[rr][cc] = int(cl)
    raters = data.raters
    for i, a in enumerate(raters):
        for b in raters[i + 1 :]:
            shared = sorted(set(by_rater[a]) & set(by_rater[b]))
            if not shared:
                continue
            xa = [by_rater[a][c] for c in shared]
            xb = [by_rater[b][c] for c in shared]
            pairs.append(
                {
                    "rater_a": a,
                    "rater_b": b,
                    "n_cases": len(shared),
                    "kappa": cohens_kappa_binary(xa, xb),
                    "percent_agreement": float(np.mean(np.array(xa) == np.array(xb))),
                }
            )
    defined = [p["kappa"] for p in pairs if p["kappa"] is not None]
    return _jsonable(
        {
            "fleiss": fleiss,
            "percent_agreement": percent,
            "unanimous_share": unanimous,
            "pairwise_cohen": pairs,
            "mean_pairwise_cohen": float(np.mean(defined)) if defined else None,
            "intra_rater": intra_rater_agreement(data),
            "notes": notes,
        }
    )


def intra_rater_agreement(rows: RowsLike) -> list[dict[str, Any]] | None:
    """Agreement of each rater with themself on re-read images: first call vs the repeat (Cohen's kappa).

    Only meaningful when the design repeats images (note §5.7). None when there are no repeats.
    """
    data = prepare_ratings(rows)
    if not data.repeats:
        return None
    per: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for rater, _case, _truth, first, again in data.repeats:
        per[rater].append((first, again))
    out = []
    for rater in sorted(per):
        a, b = zip(*per[rater], strict=True)
        out.append(
            {
                "rater": rater,
                "n_repeats": len(a),
                "percent_agreement": float(np.mean(np.array(a) == np.array(b))),
                "kappa": cohens_kappa_binary(a, b),
            }
        )
    return _jsonable(out)


# --------------------------------------------------------------------------------------------------------------------
# 4. Breakdowns
# --------------------------------------------------------------------------------------------------------------------


def by_generator(rows: RowsLike, *, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Per generator: fool rate = share of that generator's images called real (Wilson and CP CIs), with counts.

    Generated images without a generator are grouped under "unknown". Rates pool ratings (no clustering).
    """
    data = prepare_ratings(rows)
    out = []
    gen_of = np.array([data.case_generator.get(c) or "unknown" for c in data.case], dtype=object)
    for g in sorted(set(gen_of[data.truth == 1].tolist())):
        mask = (data.truth == 1) & (gen_of == g)
        fooled = int(np.sum(data.call[mask] == 0))
        n = int(mask.sum())
        out.append(
            {
                "generator": g,
                "n_ratings": n,
                "n_images": len(set(data.case[mask].tolist())),
                "n_raters": len(set(data.rater[mask].tolist())),
                "fool_rate": proportion_interval(fooled, n, alpha=alpha),
            }
        )
    return _jsonable(out)


def _describe(values: np.ndarray) -> dict[str, Any]:
    v = values[~np.isnan(values)]
    if v.size == 0:
        return {"n": 0, "median": None, "q1": None, "q3": None, "iqr": None}
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"n": int(v.size), "median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1)}


def by_image(rows: RowsLike) -> list[dict[str, Any]]:
    """Per image: detection rate = share of raters correct on it, share calling it generated, counts, mean score.

    Sorted by detection rate (highest first): the top of the list is the images almost always caught, to feed an
    artifact review (note §5.9).
    """
    data = prepare_ratings(rows)
    out = []
    correct = data.correct
    for c in data.cases:
        mask = data.case == c
        sc = data.score[mask]
        n = int(mask.sum())
        out.append(
            {
                "case": c,
                "truth": int(data.truth[mask][0]),
                "generator": data.case_generator.get(c),
                "n_ratings": n,
                "n_correct": int(correct[mask].sum()),
                "detection_rate": float(correct[mask].mean()),
                "called_generated_rate": float(data.call[mask].mean()),
                "mean_score": float(np.nanmean(sc)) if np.any(~np.isnan(sc)) else None,
                "median_duration_ms": _describe(data.duration_ms[mask])["median"],
            }
        )
    out.sort(key=lambda d: (-d["detection_rate"], d["case"]))
    return _jsonable(out)


def position_trend(position: Iterable[float], correct: Iterable[int]) -> dict[str, Any]:
    """Logistic regression correct ~ 1 + position (statsmodels GLM, Binomial, logit link).

    A positive slope suggests learning, a negative one fatigue. Guarded: returns Nones with a reason when all
    outcomes are equal, positions do not vary, or the outcomes are (quasi-)separated by position (the MLE does
    not exist). Pooled over raters with model-based SEs, which ignore clustering by rater; since each rater's
    order is randomised, position is balanced across images.
    """
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM

    x = np.asarray(list(position), dtype=float)
    y = np.asarray(list(correct), dtype=float)
    ok = ~np.isnan(x)
    x, y = x[ok], y[ok]
    empty = {
        "slope_per_trial": None,
        "se": None,
        "p_value": None,
        "ci": None,
        "odds_ratio_per_10_trials": None,
        "n": int(x.size),
    }
    if x.size < 3:
        return {**empty, "note": "fewer than 3 ratings with a position"}
    if np.all(y == y[0]):
        return {**empty, "note": "all ratings equally correct: no trend can be estimated"}
    if np.all(x == x[0]):
        return {**empty, "note": "position does not vary"}
    # One predictor separates the outcomes iff every 1 lies on one side of every 0 (ties allowed: quasi-separation).
    if x[y == 1].min() >= x[y == 0].max() or x[y == 1].max() <= x[y == 0].min():
        return {**empty, "note": "outcomes are separated by position: logistic slope is infinite"}
    design = np.column_stack([np.ones_like(x), x])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = GLM(y, design, family=families.Binomial()).fit()
        slope, se, p = float(res.params[1]), float(res.bse[1]), float(res.pvalues[1])
        lo, hi = (float(v) for v in res.conf_int()[1])
    except Exception as exc:  # statsmodels raises several types on degenerate designs
        return {**empty, "note": f"logistic fit failed: {type(exc).__name__}"}
    if not all(math.isfinite(v) for v in (slope, se, p, lo, hi)):
        return {**empty, "note": "logistic fit did not give finite estimates"}
    return {
        "slope_per_trial": slope,
        "se": se,
        "p_value": p,
        "ci": [lo, hi],
        "odds_ratio_per_10_trials": math.exp(10 * slope),
        "n": int(x.size),
        "note": "pooled over raters; model-based SE ignores clustering by rater",
    }


def by_position(rows: RowsLike, *, alpha: float = 0.05, block_size: int = 10) -> dict[str, Any] | None:
    """Accuracy per block of ``block_size`` consecutive trial positions (Wilson CI) and the logistic trend.

    Blocks start at the smallest position seen (0- or 1-based both work). None when no rating has a position.
    """
    data = prepare_ratings(rows)
    ok = ~np.isnan(data.position)
    if not ok.any():
        return None
    pos = data.position[ok]
    cor = data.correct[ok]
    start = float(pos.min())
    block = ((pos - start) // block_size).astype(int)
    blocks = []
    for b in sorted(set(block.tolist())):
        mask = block == b
        k, n = int(cor[mask].sum()), int(mask.sum())
        prop = proportion_interval(k, n, alpha=alpha)
        blocks.append(
            {
                "block": b + 1,
                "positions": [start + b * block_size, start + (b + 1) * block_size - 1],
                "n": n,
                "accuracy": prop["estimate"],
                "ci_wilson": prop["ci_wilson"],
            }
        )
    return _jsonable({"block_size": block_size, "blocks": blocks, "trend": position_trend(pos, cor)})


def reading_times(rows: RowsLike) -> dict[str, Any] | None:
    """Reading time (ms): median and IQR overall, per rater, by truth (generated/real) and by correctness.

    None when no rating has a duration.
    """
    data = prepare_ratings(rows)
    if np.all(np.isnan(data.duration_ms)):
        return None
    d, correct = data.duration_ms, data.correct
    return _jsonable(
        {
            "unit": "ms",
            "overall": _describe(d),
            "by_rater": [{"rater": r, **_describe(d[data.rater == r])} for r in data.raters],
            "by_truth": {"generated": _describe(d[data.truth == 1]), "real": _describe(d[data.truth == 0])},
            "by_correct": {"correct": _describe(d[correct == 1]), "incorrect": _describe(d[correct == 0])},
        }
    )


def _group_accuracy(
    data: Ratings, label_of: Mapping[str, str], *, alpha: float, order: Sequence[str] | None = None
) -> dict[str, Any]:
    """Accuracy per rater group (pooled Wilson/CP CI) plus a reader-level one-way ANOVA across groups."""
    correct = data.correct
    groups: dict[str, list[str]] = defaultdict(list)
    for r in data.raters:
        groups[label_of[r]].append(r)
    out, reader_acc = [], []
    rank = {g: i for i, g in enumerate(order or [])}
    for g in sorted(groups, key=lambda g: (rank.get(g, len(rank)), g)):
        mask = np.isin(data.rater, groups[g])
        accs = [float(correct[data.rater == r].mean()) for r in groups[g]]
        reader_acc.append(accs)
        out.append(
            {
                "group": g,
                "n_raters": len(groups[g]),
                "n_ratings": int(mask.sum()),
                "accuracy": proportion_interval(int(correct[mask].sum()), int(mask.sum()), alpha=alpha),
                "mean_rater_accuracy": float(np.mean(accs)),
            }
        )
    p = None
    # Readers are the unit here (pooled-rating tests would ignore clustering); needs within-group spread.
    if len(reader_acc) >= 2 and sum(len(a) for a in reader_acc) > len(reader_acc):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = _f(sps.f_oneway(*[np.array(a) for a in reader_acc]).pvalue) if all(reader_acc) else None
    return {"groups": out, "p_reader_level_anova": p}


def by_specialty(rows: RowsLike, *, alpha: float = 0.05) -> dict[str, Any]:
    """Accuracy by rater specialty (missing -> "unknown"); see :func:`_group_accuracy`."""
    data = prepare_ratings(rows)
    labels = {r: data.rater_specialty.get(r) or "unknown" for r in data.raters}
    return _jsonable(_group_accuracy(data, labels, alpha=alpha))


def by_experience(rows: RowsLike, *, alpha: float = 0.05, bands: Sequence[float] = (5.0, 10.0)) -> dict[str, Any]:
    """Accuracy by experience band in years, lower-inclusive: with bands (5, 10) -> "<5", "5-<10", ">=10"
    (the strata of Park et al. 2021); missing experience -> "unknown"."""
    data = prepare_ratings(rows)
    edges = sorted(float(b) for b in bands)

    def label(years: float | None) -> str:
        if years is None:
            return "unknown"
        if years < edges[0]:
            return f"<{edges[0]:g}"
        for lo, hi in zip(edges, edges[1:], strict=False):
            if lo <= years < hi:
                return f"{lo:g}-<{hi:g}"
        return f">={edges[-1]:g}"

    labels = {r: label(data.rater_experience.get(r)) for r in data.raters}
    order = [label(edges[0] - 1), *(label(e) for e in edges), "unknown"]
    res = _group_accuracy(data, labels, alpha=alpha, order=order)
    res["bands_years"] = edges
    return _jsonable(res)


# --------------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------------


def study_statistics(
    rows: RowsLike,
    *,
    margin: float = 0.10,
    alpha: float = 0.05,
    n_bootstrap: int = 2000,
    seed: int = 0,
    block_size: int = 10,
    experience_bands: Sequence[float] = (5.0, 10.0),
    auc_covariance: Literal["jackknife", "delong"] = "jackknife",
) -> dict[str, Any]:
    """All statistics of a visual Turing test as one JSON-serialisable dict.

    Sections: ``design`` (counts, crossed or not, repeats), ``pooled`` (binary performance over all ratings:
    ignores clustering), ``raters`` (per-rater binary performance, DeLong AUC, d'/c), ``mrmc`` (reader-averaged
    accuracy and AUC with Obuchowski-Rockette intervals), ``agreement``, ``by_generator``, ``by_image``,
    ``by_position``, ``reading_times``, ``by_specialty``, ``by_experience``, ``summary`` (the headline verdict:
    reader-averaged accuracy via OR when there are >= 2 readers, else the exact binomial) and ``notes``.
    Raises ``ValueError`` on empty or invalid input.
    """
    data = prepare_ratings(rows)
    notes: list[str] = []
    raters = data.raters
    n_cases = len(data.cases)
    crossed = all(np.sum(data.rater == r) == n_cases for r in raters)
    case_truth = {c: int(t) for c, t in zip(data.case, data.truth, strict=True)}
    if data.repeats:
        notes.append(
            f"{len(data.repeats)} repeated rating(s) of the same image by the same rater were left out of "
            "the main analyses (first reading kept) and used for intra-rater agreement."
        )

    per_rater = []
    for r in raters:
        mask = data.rater == r
        perf = binary_performance(data.truth[mask], data.call[mask], margin=margin, alpha=alpha)
        cm = perf["confusion_matrix"]
        per_rater.append(
            {
                "rater": r,
                "specialty": data.rater_specialty.get(r),
                "experience_years": data.rater_experience.get(r),
                **perf,
                "auc": delong_auc(data.truth[mask], data.score[mask], alpha=alpha),
                "signal_detection": signal_detection(cm["tp"], cm["fn"], cm["fp"], cm["tn"]),
            }
        )
    pooled = binary_performance(data.truth, data.call, margin=margin, alpha=alpha)
    cm = pooled["confusion_matrix"]
    pooled["signal_detection"] = signal_detection(cm["tp"], cm["fn"], cm["fp"], cm["tn"])
    pooled["note"] = "pooled binomial over all ratings: ignores clustering by reader and image (see mrmc)"

    mrmc_acc = mrmc_accuracy(data, alpha=alpha, margin=margin)
    mrmc_roc = mrmc_auc(data, alpha=alpha, margin=margin, covariance=auc_covariance)
    if mrmc_acc is None:
        notes.append("Reader-averaged accuracy needs at least 2 cases read by every reader.")
    if mrmc_roc is None and not np.all(np.isnan(data.score)):
        notes.append("Reader-averaged AUC needs >= 2 generated and >= 2 real cases scored by every scoring reader.")

    if mrmc_acc is not None and mrmc_acc["n_readers"] >= 2:
        basis, head = "reader-averaged accuracy, Obuchowski-Rockette (random readers and cases)", mrmc_acc
    elif mrmc_acc is not None:
        basis, head = "single reader: exact binomial and TOST over cases", mrmc_acc
    else:
        basis, head = (
            "pooled exact binomial and TOST (ignores clustering)",
            {
                "estimate": pooled["accuracy"]["estimate"],
                "ci": pooled["accuracy"]["ci_clopper_pearson"],
                **pooled["chance"],
            },
        )
    summary = {
        "verdict": head["verdict"],
        "basis": basis,
        "accuracy": head["estimate"],
        "ci": head["ci"],
        "margin": margin,
        "alpha": alpha,
        "auc_verdict": mrmc_roc["verdict"] if mrmc_roc else None,
        "auc": mrmc_roc["estimate"] if mrmc_roc else None,
    }

    return _jsonable(
        {
            "convention": CONVENTION,
            "parameters": {
                "margin": margin,
                "alpha": alpha,
                "n_bootstrap": n_bootstrap,
                "seed": seed,
                "block_size": block_size,
                "experience_bands": list(experience_bands),
                "auc_covariance": auc_covariance,
            },
            "design": {
                "n_ratings": int(data.rater.size),
                "n_raters": len(raters),
                "n_cases": n_cases,
                "n_generated_cases": int(sum(case_truth.values())),
                "n_real_cases": int(n_cases - sum(case_truth.values())),
                "fully_crossed": crossed,
                "n_repeated_ratings": len(data.repeats),
                "has_scores": bool(np.any(~np.isnan(data.score))),
            },
            "summary": summary,
            "pooled": pooled,
            "raters": per_rater,
            "mrmc": {"accuracy": mrmc_acc, "auc": mrmc_roc},
            "agreement": agreement(data, alpha=alpha, n_bootstrap=n_bootstrap, seed=seed),
            "by_generator": by_generator(data, alpha=alpha),
            "by_image": by_image(data),
            "by_position": by_position(data, alpha=alpha, block_size=block_size),
            "reading_times": reading_times(data),
            "by_specialty": by_specialty(data, alpha=alpha),
            "by_experience": by_experience(data, alpha=alpha, bands=experience_bands),
            "notes": notes,
        }
    )
