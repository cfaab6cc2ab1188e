"""Tests for turing.stats: pure statistics, no database.

Expected values are hand-computed in the comments, taken from the literature (Hanley & McNeil 1982 AUC 0.893,
Fleiss 1971 kappa 0.430, the Wikipedia Fleiss example 0.210), or recomputed by a deliberately naive second
implementation in the test (loops over cases), never by calling the function under test twice.
"""

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.inter_rater import cohens_kappa, fleiss_kappa
from statsmodels.stats.proportion import binom_tost

from turing import stats as st
from turing.stats import RatingRow


def rows_from_matrix(calls, truth, *, scores=None, raters=None):
    """Crossed design: calls[r][i] is reader r's call on case i."""
    raters = raters or [f"r{j}" for j in range(len(calls))]
    rows = []
    for j, rater in enumerate(raters):
        for i, t in enumerate(truth):
            rows.append(
                RatingRow(
                    rater=rater,
                    case=f"c{i:03d}",
                    truth=int(t),
                    call=int(calls[j][i]),
                    score=None if scores is None else float(scores[j][i]),
                    position=i + 1,
                )
            )
    return rows


def simulated_rows(n_readers=4, n_cases=40, seed=1):
    rng = np.random.default_rng(seed)
    truth = np.arange(n_cases) % 2
    rows = []
    for j in range(n_readers):
        order = rng.permutation(n_cases)
        for pos, i in enumerate(order):
            latent = rng.normal(0.8 * (truth[i] - 0.5) + 0.1 * j, 1.0)
            call = int(latent > 0.2)
            conf = int(np.clip(abs(latent) * 2 + 1, 1, 5))
            rows.append(
                RatingRow(
                    rater=f"r{j}",
                    case=f"c{i:03d}",
                    truth=int(truth[i]),
                    call=call,
                    score=st.score_from_confidence(call, conf),
                    position=pos + 1,
                    duration_ms=float(rng.gamma(2.0, 3000.0)),
                    generator=("stylegan2" if i % 4 == 1 else "dcgan") if truth[i] else None,
                    rater_specialty="radiology" if j < 2 else "cardiology",
                    rater_experience=float(3 * j),
                )
            )
    return rows


def assert_json_clean(obj):
    # allow_nan=False raises on NaN/inf anywhere in the structure.
    json.dumps(obj, allow_nan=False)


# --------------------------------------------------------------------------------------------------------------------
# Confusion matrix and proportions
# --------------------------------------------------------------------------------------------------------------------


def test_confusion_matrix_hand_counted():
    truth = [1, 1, 1, 1, 0, 0, 0]
    call = [1, 1, 0, 0, 0, 1, 0]
    # generated called generated: 2; generated called real: 2; real called generated: 1; real called real: 2
    assert st.confusion_matrix(truth, call) == {"tp": 2, "fn": 2, "fp": 1, "tn": 2}


def test_binary_performance_proportions():
    res = st.binary_performance([1, 1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1, 0])
    assert res["accuracy"]["k"] == 4 and res["accuracy"]["n"] == 7
    assert res["sensitivity"]["estimate"] == pytest.approx(2 / 4)
    assert res["specificity"]["estimate"] == pytest.approx(2 / 3)
    assert res["fool_rate"]["estimate"] == pytest.approx(2 / 4)
    assert res["false_alarm_rate"]["estimate"] == pytest.approx(1 / 3)
    assert res["called_generated_rate"]["estimate"] == pytest.approx(3 / 7)


def wilson_closed_form(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(
    ("k", "n", "cp", "wilson"),
    [
        (7, 10, (0.3475, 0.9333), (0.3968, 0.8922)),  # textbook values (e.g. Newcombe 1998 style tables)
        (0, 20, (0.0, 0.1684), (0.0, 0.1611)),
        (20, 20, (0.8316, 1.0), (0.8389, 1.0)),
    ],
)
def test_proportion_intervals_known_values(k, n, cp, wilson):
    res = st.proportion_interval(k, n)
    assert res["ci_clopper_pearson"] == pytest.approx(cp, abs=5e-5)
    assert res["ci_wilson"] == pytest.approx(wilson, abs=5e-5)
    assert res["ci_wilson"] == pytest.approx(wilson_closed_form(k, n), abs=1e-12)


def test_clopper_pearson_edges_closed_form():
    # For k = 0 the exact upper bound solves (1 - p)^n = alpha/2; for k = n the lower bound solves p^n = alpha/2.
    assert st.proportion_interval(0, 20)["ci_clopper_pearson"] == [0.0, pytest.approx(1 - 0.025 ** (1 / 20))]
    assert st.proportion_interval(20, 20)["ci_clopper_pearson"] == [pytest.approx(0.025 ** (1 / 20)), 1.0]
    # The edge bounds are exact 0 and 1, not 0.9999999999999999.
    assert st.proportion_interval(20, 20)["ci_wilson"][1] == 1.0


def test_proportion_interval_empty():
    assert st.proportion_interval(0, 0) == {
        "k": 0,
        "n": 0,
        "estimate": None,
        "ci_clopper_pearson": None,
        "ci_wilson": None,
    }


# --------------------------------------------------------------------------------------------------------------------
# Binomial test and TOST
# --------------------------------------------------------------------------------------------------------------------


def test_binomial_test_hand_values():
    # 9/10 two-sided against 0.5: P(X >= 9) + P(X <= 1) = 2 * (10 + 1) / 1024.
    assert st.chance_tests(9, 10)["p_two_sided"] == pytest.approx(22 / 1024, abs=1e-15)
    # Note §5.12: >= 61/100 is needed for significance in an exact two-sided test.
    assert st.chance_tests(61, 100)["different_from_chance"]
    assert not st.chance_tests(60, 100)["different_from_chance"]
    tail = sum(math.comb(100, i) for i in range(61, 101)) / 2**100
    assert st.chance_tests(61, 100)["p_two_sided"] == pytest.approx(2 * tail, rel=1e-12)


def test_tost_examples_from_brief():
    # 90% CP interval for 50/100 is about [0.4136, 0.5864], inside [0.4, 0.6] -> equivalent.
    res = st.chance_tests(50, 100, margin=0.10)
    assert res["ci_tost_clopper_pearson"] == pytest.approx([0.4136, 0.5864], abs=1e-4)
    assert res["equivalent_to_chance"] and res["equivalent_by_ci"]
    assert res["verdict"] == "indistinguishable"
    # 5/10: 90% CP interval [0.222, 0.778] -> not equivalent, not different -> inconclusive.
    res = st.chance_tests(5, 10, margin=0.10)
    assert not res["equivalent_to_chance"] and not res["equivalent_by_ci"]
    assert res["verdict"] == "inconclusive"


def test_tost_matches_statsmodels_binom_tost():
    for k, n in [(50, 100), (5, 10), (140, 300), (0, 30), (30, 30)]:
        p_sm = binom_tost(k, n, 0.4, 0.6)[0]
        assert st.chance_tests(k, n, margin=0.10)["p_tost"] == pytest.approx(float(p_sm), rel=1e-9)


def test_tost_pvalue_and_interval_formulations_agree_over_grid():
    for n in (1, 7, 10, 25, 60, 100, 200):
        for k in range(n + 1):
            for margin in (0.05, 0.1, 0.15, 0.2):
                res = st.chance_tests(k, n, margin=margin, alpha=0.05)
                assert res["equivalent_to_chance"] == res["equivalent_by_ci"], (k, n, margin)


@pytest.mark.parametrize(
    ("k", "n", "verdict", "direction"),
    [
        (50, 100, "indistinguishable", None),
        (61, 100, "distinguishable", "above"),
        (30, 100, "distinguishable", "below"),  # below chance: two-sided test, inverted beliefs (note §4)
        (55, 100, "inconclusive", None),
        (5300, 10000, "distinguishable_within_margin", "above"),
    ],
)
def test_verdicts(k, n, verdict, direction):
    res = st.chance_tests(k, n, margin=0.10)
    assert res["verdict"] == verdict
    assert res["direction"] == direction


def test_chance_tests_rejects_bad_margin():
    with pytest.raises(ValueError):
        st.chance_tests(5, 10, margin=0.6)


# --------------------------------------------------------------------------------------------------------------------
# AUC and DeLong
# --------------------------------------------------------------------------------------------------------------------


def test_auc_tiny_examples_with_ties():
    # generated [3, 2, 2] vs real [1, 2]: pairs 1, 1, 1, 1/2, 1, 1/2 -> 5/6
    assert st.roc_auc([1, 1, 1, 0, 0], [3, 2, 2, 1, 2]) == pytest.approx(5 / 6)
    assert st.roc_auc([1, 1, 0, 0], [1, 1, 1, 1]) == 0.5  # all tied
    assert st.roc_auc([1, 1, 0, 0], [2, 3, 0, 1]) == 1.0
    assert st.roc_auc([1, 1, 0, 0], [0, 1, 2, 3]) == 0.0  # inverted: readers confuse the classes
    assert st.roc_auc([1, 1], [1, 2]) is None


def test_auc_hanley_mcneil_ct_example():
    # Hanley & McNeil (1982) Table 1: 5-point ratings of 109 CT images; trapezoidal area W = 0.893.
    real = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    generated = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    truth = np.r_[np.ones(generated.size), np.zeros(real.size)].astype(int)
    res = st.delong_auc(truth, np.r_[generated, real])
    assert round(res["auc"], 3) == 0.893
    # Hanley-McNeil's own SE is 0.032; DeLong's estimator is close to it.
    assert res["se"] == pytest.approx(0.032, abs=0.002)


def test_delong_variance_hand_worked():
    # X (generated) = .9 .6 .4, Y (real) = .5 .4 .1
    # V10 = [1, 1, 1/2] (the .4 ties one real), V01 = [2/3, 5/6, 1]; AUC = 5/6
    # S10 = var([1, 1, .5]) = 1/12, S01 = var([2/3, 5/6, 1]) = 1/36; Var = S10/3 + S01/3 = 1/27
    res = st.delong_auc([1, 1, 1, 0, 0, 0], [0.9, 0.6, 0.4, 0.5, 0.4, 0.1])
    assert res["auc"] == pytest.approx(5 / 6)
    assert res["se"] ** 2 == pytest.approx(1 / 27)
    assert res["ci"][1] == 1.0  # clipped


def brute_force_delong_cov(truth, scores):
    """Structural components written out with loops and Fractions."""
    pos = [i for i, t in enumerate(truth) if t == 1]
    neg = [i for i, t in enumerate(truth) if t == 0]

    def psi(a, b):
        return Fraction(1) if a > b else Fraction(1, 2) if a == b else Fraction(0)

    v10 = [[sum(psi(s[i], s[j]) for j in neg) / len(neg) for i in pos] for s in scores]
    v01 = [[sum(psi(s[i], s[j]) for i in pos) / len(pos) for j in neg] for s in scores]
    r = len(scores)
    cov = [[Fraction(0)] * r for _ in range(r)]
    for a in range(r):
        for b in range(r):
            ma, mb = sum(v10[a]) / len(pos), sum(v10[b]) / len(pos)
            s10 = sum((x - ma) * (y - mb) for x, y in zip(v10[a], v10[b])) / (len(pos) - 1)
            na, nb = sum(v01[a]) / len(neg), sum(v01[b]) / len(neg)
            s01 = sum((x - na) * (y - nb) for x, y in zip(v01[a], v01[b])) / (len(neg) - 1)
            cov[a][b] = s10 / len(pos) + s01 / len(neg)
    return [float(sum(v) / len(v)) for v in v10], [[float(c) for c in row] for row in cov]


def test_delong_covariance_matches_brute_force():
    rng = np.random.default_rng(3)
    truth = [1, 1, 1, 1, 0, 0, 0, 0, 0]
    scores = rng.integers(1, 6, size=(3, len(truth)))  # small integer scale -> many ties
    aucs, cov = st.delong_covariance(truth, scores)
    exp_aucs, exp_cov = brute_force_delong_cov(truth, scores.tolist())
    assert aucs == pytest.approx(exp_aucs)
    assert cov == pytest.approx(np.array(exp_cov))


def test_jackknife_auc_matches_leave_one_out():
    rng = np.random.default_rng(4)
    truth = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    scores = rng.integers(1, 5, size=(2, truth.size)).astype(float)
    jk = st.jackknife_auc(truth, scores)
    for a in range(2):
        for k in range(truth.size):
            keep = np.arange(truth.size) != k
            assert jk[a, k] == pytest.approx(st.roc_auc(truth[keep], scores[a, keep]))


def test_jackknife_accuracy_covariance_is_sample_cov_over_n():
    c = np.array([[1, 1, 0, 0, 1], [1, 1, 0, 1, 1]])
    cov = st.jackknife_covariance(st.jackknife_accuracy(c))
    assert cov == pytest.approx(np.cov(c, ddof=1) / c.shape[1])


# --------------------------------------------------------------------------------------------------------------------
# Obuchowski-Rockette
# --------------------------------------------------------------------------------------------------------------------

# Correctness of 3 readers on 5 cases (all cases generated, so correct == call).
OR_CORRECT = [[1, 1, 0, 0, 1], [1, 1, 0, 1, 1], [1, 0, 0, 0, 1]]


def test_or_accuracy_hand_worked():
    # Reader accuracies .6 .8 .4, mean .6, MS_R = (0 + .04 + .04) / 2 = .04.
    # Jackknife covariance of accuracy = sample covariance of correctness / n:
    #   cov(1,2) = .6/4/5 = .03, cov(1,3) = .8/4/5 = .04, cov(2,3) = .4/4/5 = .02 -> Cov2 = .03
    #   var 1 = 1.2/4/5 = .06, var 2 = .8/4/5 = .04, var 3 = .06 -> Var = .16/3
    # Random readers: SE^2 = (MS_R + r Cov2) / r = (.04 + .09) / 3; df = .13^2 / (.04^2 / 2) = 21.125
    # Fixed readers: SE^2 = (Var + (r - 1) Cov2) / r = (.16/3 + .06) / 3
    res = st.mrmc_accuracy(rows_from_matrix(OR_CORRECT, [1] * 5))
    assert res["estimate"] == pytest.approx(0.6)
    assert res["reader_values"] == pytest.approx([0.6, 0.8, 0.4])
    assert res["ms_r"] == pytest.approx(0.04)
    assert res["cov2"] == pytest.approx(0.03)
    assert res["var"] == pytest.approx(0.16 / 3)
    assert res["se"] == pytest.approx(math.sqrt(0.13 / 3))
    assert res["df"] == pytest.approx(21.125)
    assert res["sigma2_reader"] == pytest.approx(0.04 - 0.16 / 3 + 0.03)
    assert res["fixed_readers"]["se"] == pytest.approx(math.sqrt((0.16 / 3 + 0.06) / 3))
    half = sps.t.ppf(0.975, 21.125) * math.sqrt(0.13 / 3)
    assert res["ci"] == pytest.approx([0.6 - half, min(0.6 + half, 1.0)])
    assert res["covariance_method"] == "jackknife over cases"


def test_or_negative_cov2_is_truncated():
    # Readers 1 .75, 2 .5, 3 .75 on 4 cases; MS_R = 1/48. Covariances 1/24, -1/48, -1/24 -> Cov2 = -1/144 < 0,
    # so SE^2 = MS_R / r = 1/144 and df = r - 1 = 2.
    c = [[1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 1, 0]]
    res = st.mrmc_accuracy(rows_from_matrix(c, [1] * 4))
    assert res["cov2"] == pytest.approx(-1 / 144)
    assert res["se"] == pytest.approx(1 / 12)
    assert res["df"] == pytest.approx(2.0)
    assert any("truncated" in n for n in res["notes"])


def test_or_identical_readers_reduce_to_one_reader_jackknife():
    # Identical readers: MS_R = 0 and Cov2 = Var, so SE^2 = Var = p(1 - p) / (n - 1), df infinite.
    one = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1]  # accuracy .7 on 10 cases
    res = st.mrmc_accuracy(rows_from_matrix([one] * 4, [1] * 10))
    assert res["ms_r"] == 0
    assert res["cov2"] == pytest.approx(res["var"])
    assert res["se"] == pytest.approx(math.sqrt(0.7 * 0.3 / 9))
    assert res["df"] is None
    z = sps.norm.ppf(0.975)
    assert res["ci"] == pytest.approx([0.7 - z * res["se"], 0.7 + z * res["se"]])


def test_or_no_variability_collapses():
    res = st.mrmc_accuracy(rows_from_matrix([[1, 1, 0, 0]] * 3, [1, 1, 0, 0]))  # all perfect
    assert res["estimate"] == 1.0 and res["se"] == 0 and res["ci"] == [1.0, 1.0]
    assert res["p_two_sided"] is None
    assert res["verdict"] == "distinguishable"
    assert_json_clean(res)


def test_or_single_test_direct_formula_and_validation():
    cov = np.array([[0.004, 0.001], [0.001, 0.006]])
    res = st.or_single_test([0.6, 0.7], cov)
    ms_r = np.var([0.6, 0.7], ddof=1)
    assert res["se"] == pytest.approx(math.sqrt((ms_r + 2 * 0.001) / 2))
    assert res["df"] == pytest.approx((ms_r + 2 * 0.001) ** 2 / ms_r**2)
    with pytest.raises(ValueError):
        st.or_single_test([0.6], np.array([[0.01]]))


def test_mrmc_single_reader_falls_back_to_case_only_interval():
    res = st.mrmc_accuracy(rows_from_matrix([[1, 1, 0, 1, 1, 1, 1, 0, 1, 1]], [1] * 10))
    assert res["n_readers"] == 1
    assert "single reader" in res["method"]
    assert res["ci"] == pytest.approx(st.proportion_interval(8, 10)["ci_clopper_pearson"])


def test_mrmc_auc_jackknife_close_to_delong_and_single_reader_fallback():
    rows = simulated_rows(n_readers=3, n_cases=120, seed=7)
    jk = st.mrmc_auc(rows, covariance="jackknife")
    dl = st.mrmc_auc(rows, covariance="delong")
    assert jk["estimate"] == pytest.approx(dl["estimate"])
    # Both estimate the same case-sampling variance; for 120 cases they agree closely.
    assert jk["var"] == pytest.approx(dl["var"], rel=0.1)
    one = st.mrmc_auc([r for r in rows if r.rater == "r0"])
    assert one["n_readers"] == 1 and "DeLong" in one["method"]
    assert st.mrmc_auc(rows_from_matrix([[1, 0, 1, 0]], [1, 0, 1, 0])) is None  # no scores


def test_mrmc_uses_only_cases_read_by_every_reader():
    rows = rows_from_matrix(OR_CORRECT, [1] * 5)
    rows.append(RatingRow(rater="r0", case="extra", truth=0, call=0))
    res = st.mrmc_accuracy(rows)
    assert res["n_cases"] == 5 and res["n_cases_dropped_not_crossed"] == 1
    assert any("left out" in n for n in res["notes"])


# --------------------------------------------------------------------------------------------------------------------
# Agreement
# --------------------------------------------------------------------------------------------------------------------

# Wikipedia "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories, kappa = 0.210.
WIKIPEDIA_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]

# Fleiss (1971): 30 patients, 6 psychiatrists, 5 diagnoses (R irr ``diagnoses``); kappam.fleiss = 0.4302445.
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip


def test_fleiss_kappa_published_examples():
    assert st.fleiss_kappa_table(np.array(WIKIPEDIA_TABLE)) == pytest.approx(0.210, abs=5e-4)
    table = np.array([[row.count(c) for c in range(1, 6)] for row in FLEISS_1971])
    assert st.fleiss_kappa_table(table) == pytest.approx(0.4302445, abs=1e-7)
    assert round(st.fleiss_kappa_table(table), 3) == 0.430


def test_fleiss_binary_vectorised_matches_statsmodels():
    rng = np.random.default_rng(5)
    n_gen = rng.integers(0, 7, size=(20, 30))
    fast = st._fleiss_binary_many(n_gen, 6)
    for b in range(n_gen.shape[0]):
        table = np.column_stack([6 - n_gen[b], n_gen[b]])
        assert fast[b] == pytest.approx(fleiss_kappa(table))


def test_fleiss_degenerate_is_none():
    assert st.fleiss_kappa_table(np.array([[0, 4], [0, 4], [0, 4]])) is None


def test_cohens_kappa_hand_2x2():
    # Both generated 4, A generated/B real 1, A real/B generated 2, both real 3:
    # p_o = 7/10; A calls generated 5/10, B 6/10 -> p_e = .3 + .2 = .5; kappa = (.7 - .5) / .5 = .4
    a = [1] * 4 + [1] + [0] * 2 + [0] * 3
    b = [1] * 4 + [0] + [1] * 2 + [0] * 3
    assert st.cohens_kappa_binary(a, b) == pytest.approx(0.4)
    assert st.cohens_kappa_binary(a, b) == pytest.approx(cohens_kappa(np.array([[4, 1], [2, 3]])).kappa)
    assert st.cohens_kappa_binary([1, 1, 1], [1, 1, 1]) is None
    assert st.cohens_kappa_binary([1, 1], [0, 0]) == 0.0


def test_agreement_bootstrap_is_seeded_and_brackets_kappa():
    rows = simulated_rows(n_readers=4, n_cases=40)
    a = st.agreement(rows, n_bootstrap=500, seed=11)
    b = st.agreement(rows, n_bootstrap=500, seed=11)
    assert a == b
    f = a["fleiss"]
    assert f["raters_per_case"] == 4 and f["n_cases"] == 40
    assert f["ci"][0] <= f["kappa"] <= f["ci"][1]
    assert len(a["pairwise_cohen"]) == 6
    assert 0 <= a["percent_agreement"] <= 1


def test_agreement_all_same_answer_is_undefined_with_note():
    res = st.agreement(rows_from_matrix([[0, 0, 0, 0]] * 3, [1, 0, 1, 0]))
    assert res["fleiss"]["kappa"] is None and res["fleiss"]["ci"] is None
    assert any("undefined" in n for n in res["notes"])
    assert all(p["kappa"] is None for p in res["pairwise_cohen"])
    assert res["percent_agreement"] == 1.0
    assert_json_clean(res)


def test_repeated_ratings_kept_once_and_used_for_intra_rater():
    rows = rows_from_matrix([[1, 0, 1, 0]], [1, 0, 1, 0])
    rows.append(RatingRow(rater="r0", case="c000", truth=1, call=0, position=10))
    rows.append(RatingRow(rater="r0", case="c001", truth=0, call=0, position=11))
    data = st.prepare_ratings(rows)
    assert data.rater.size == 4 and len(data.repeats) == 2
    assert data.call[data.case == "c000"][0] == 1  # the first reading (position 1) is kept
    intra = st.intra_rater_agreement(rows)
    assert intra == [{"rater": "r0", "n_repeats": 2, "percent_agreement": 0.5, "kappa": pytest.approx(0.0)}]


# --------------------------------------------------------------------------------------------------------------------
# Breakdowns, position, timing, SDT
# --------------------------------------------------------------------------------------------------------------------


def test_position_trend_detects_learning():
    # Correct on 1 of 4 trials early, 3 of 4 late, for 2 raters over 40 positions.
    position, correct = [], []
    for _rater in range(2):
        for p in range(1, 41):
            position.append(p)
            correct.append(int(p % 4 == 0) if p <= 20 else int(p % 4 != 0))
    res = st.position_trend(position, correct)
    assert res["slope_per_trial"] > 0 and res["p_value"] < 0.05
    assert res["odds_ratio_per_10_trials"] > 1
    fatigue = st.position_trend(position, [1 - c for c in correct])
    assert fatigue["slope_per_trial"] < 0


def test_position_trend_guards():
    assert st.position_trend([1, 2, 3, 4], [1, 1, 1, 1])["slope_per_trial"] is None
    separated = st.position_trend([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1])
    assert separated["slope_per_trial"] is None and "separated" in separated["note"]
    assert st.position_trend([3, 3, 3, 3], [0, 1, 0, 1])["slope_per_trial"] is None


def test_by_position_blocks():
    rows = rows_from_matrix([[1] * 10 + [0] * 10], [1] * 20)  # correct on positions 1-10 only
    res = st.by_position(rows, block_size=10)
    assert [b["accuracy"] for b in res["blocks"]] == [1.0, 0.0]
    assert res["blocks"][0]["positions"] == [1, 10]
    assert res["trend"]["slope_per_trial"] is None  # perfectly separated


def test_signal_detection_hand_values():
    # 8/10 hits, 2/10 false alarms -> H = 8.5/11, F = 2.5/11 (log-linear); symmetric, so c = 0.
    res = st.signal_detection(8, 2, 2, 8)
    z = sps.norm.ppf
    assert res["d_prime"] == pytest.approx(z(8.5 / 11) - z(2.5 / 11))
    assert res["criterion_c"] == pytest.approx(0.0, abs=1e-12)
    # A reader who calls most images real (bias toward "real") has c > 0.
    assert st.signal_detection(3, 7, 1, 9)["criterion_c"] > 0
    perfect = st.signal_detection(10, 0, 0, 10)  # finite thanks to the correction
    assert math.isfinite(perfect["d_prime"]) and perfect["d_prime"] > 3
    assert st.signal_detection(0, 0, 1, 1)["d_prime"] is None


def test_by_generator_and_by_image():
    rows = [
        RatingRow("a", "g1", 1, 0, generator="dcgan"),
        RatingRow("b", "g1", 1, 0, generator="dcgan"),
        RatingRow("a", "g2", 1, 1, generator="stylegan2"),
        RatingRow("b", "g2", 1, 0, generator="stylegan2"),
        RatingRow("a", "r1", 0, 0),
        RatingRow("b", "r1", 0, 1),
    ]
    gens = {g["generator"]: g for g in st.by_generator(rows)}
    assert gens["dcgan"]["fool_rate"]["estimate"] == 1.0 and gens["dcgan"]["n_images"] == 1
    assert gens["stylegan2"]["fool_rate"]["estimate"] == 0.5
    assert gens["stylegan2"]["fool_rate"]["ci_wilson"] == pytest.approx(wilson_closed_form(1, 2))
    images = st.by_image(rows)
    assert [i["case"] for i in images] == ["g2", "r1", "g1"]  # detection .5, .5 (ties by id), 0
    assert images[-1]["detection_rate"] == 0.0 and images[-1]["generator"] == "dcgan"


def test_reading_times_median_iqr():
    rows = [RatingRow("a", f"c{i}", i % 2, i % 2, duration_ms=float(d)) for i, d in enumerate([1000, 2000, 3000, 4000])]
    res = st.reading_times(rows)
    assert res["overall"]["median"] == 2500 and res["overall"]["iqr"] == pytest.approx(1500)
    assert res["by_truth"]["generated"]["median"] == 3000  # cases 1 and 3: 2000 and 4000
    assert res["by_correct"]["incorrect"]["n"] == 0
    assert st.reading_times([RatingRow("a", "c", 1, 1)]) is None


def test_experience_bands_and_specialty():
    rows = []
    for rater, years, spec in [("a", 2, "radiology"), ("b", 7, "radiology"), ("c", 12, None), ("d", None, "x")]:
        rows += [RatingRow(rater, "c1", 1, 1, rater_experience=years, rater_specialty=spec)]
        rows += [RatingRow(rater, "c2", 0, 1, rater_experience=years, rater_specialty=spec)]
    exp = st.by_experience(rows)
    assert [g["group"] for g in exp["groups"]] == ["<5", "5-<10", ">=10", "unknown"]
    spec = st.by_specialty(rows)
    assert {g["group"]: g["n_raters"] for g in spec["groups"]} == {"radiology": 2, "unknown": 1, "x": 1}


# --------------------------------------------------------------------------------------------------------------------
# Input validation and the entry point
# --------------------------------------------------------------------------------------------------------------------


def test_input_validation():
    with pytest.raises(ValueError, match="no ratings"):
        st.study_statistics([])
    with pytest.raises(ValueError):
        st.prepare_ratings([RatingRow("a", "c", 2, 1)])
    with pytest.raises(ValueError):
        st.prepare_ratings([RatingRow("a", "c", 1, 1), RatingRow("b", "c", 0, 1)])  # conflicting truth


def test_dict_rows_and_score_helpers():
    res = st.binary_performance(*zip(*[(1, 1), (0, 0)]))
    assert res["accuracy"]["estimate"] == 1.0
    data = st.prepare_ratings([{"rater": "a", "case": "c", "truth": 1, "call": True, "extra": "ignored"}])
    assert data.call.tolist() == [1]
    assert st.score_from_confidence(0, 4) == -4.0 and st.score_from_confidence(1, 2) == 2.0
    assert st.call_and_score_from_six_point(3) == (0, 3.0)
    assert st.call_and_score_from_six_point(4) == (1, 4.0)


def test_study_statistics_realistic_is_json_clean():
    res = st.study_statistics(simulated_rows(), n_bootstrap=300)
    assert_json_clean(res)
    assert res["design"]["fully_crossed"] and res["design"]["n_raters"] == 4
    assert res["convention"]["positive_class"] == "generated"
    assert res["summary"]["basis"].startswith("reader-averaged accuracy")
    assert res["mrmc"]["accuracy"]["n_readers"] == 4 and res["mrmc"]["auc"] is not None
    assert all(r["auc"] is not None for r in res["raters"])
    # Crossed design: reader-averaged accuracy equals pooled accuracy.
    assert res["mrmc"]["accuracy"]["estimate"] == pytest.approx(res["pooled"]["accuracy"]["estimate"])


@pytest.mark.parametrize(
    "rows",
    [
        # one rater, all correct, no scores, no positions or durations
        [RatingRow("a", f"c{i}", i % 2, i % 2) for i in range(6)],
        # two raters, every answer "real"
        rows_from_matrix([[0] * 6, [0] * 6], [1, 0] * 3),
        # a single rating
        [RatingRow("a", "c", 1, 0)],
        # two raters, disjoint cases (nothing crossed), only generated images
        [RatingRow("a", "c1", 1, 1), RatingRow("b", "c2", 1, 0)],
        # scores present but only one class scored
        [RatingRow("a", "c1", 1, 1, score=3), RatingRow("a", "c2", 1, 0, score=-2), RatingRow("a", "c3", 0, 0)],
    ],
    ids=["one-rater-all-correct", "all-real", "single-rating", "disjoint", "one-class-scored"],
)
def test_study_statistics_degenerate_inputs_never_emit_nan(rows):
    res = st.study_statistics(rows, n_bootstrap=50)
    assert_json_clean(res)
    assert res["summary"]["verdict"] in {
        "indistinguishable",
        "distinguishable",
        "distinguishable_within_margin",
        "inconclusive",
        "no_data",
    }


def test_one_rater_all_correct_details():
    res = st.study_statistics([RatingRow("a", f"c{i}", i % 2, i % 2) for i in range(6)], n_bootstrap=50)
    assert res["mrmc"]["accuracy"]["n_readers"] == 1 and res["mrmc"]["auc"] is None
    assert res["agreement"]["fleiss"]["kappa"] is None
    assert res["raters"][0]["accuracy"]["estimate"] == 1.0
    assert res["by_position"] is None and res["reading_times"] is None


def test_grid_of_all_verdict_inputs_is_json_clean():
    for k, n in itertools.product(range(0, 11), [10]):
        assert_json_clean(st.chance_tests(k, n))
