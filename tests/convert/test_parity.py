"""The parity comparison itself, on hand-made logits."""

from __future__ import annotations

import numpy as np
import pytest

from edgemap.convert.parity import Tolerance, compare, gate, run_batches
from edgemap.errors import EdgemapError


def test_identical_logits_pass() -> None:
    ref = np.random.default_rng(0).standard_normal((50, 10)).astype(np.float32)
    r = compare(ref, ref.copy(), tolerance=Tolerance(1e-6, 1.0))
    assert r.passed and r.max_abs_diff == 0 and r.top1_agreement == 1.0
    gate(r, "x")


def test_disagreement_and_drift_are_measured_and_refused() -> None:
    ref = np.eye(10, dtype=np.float32)[np.arange(20) % 10] * 5
    cand = ref.copy()
    cand[:2] = np.roll(cand[:2], 1, axis=1)  # two of twenty inputs change their top-1 class
    labels = np.arange(20) % 10
    r = compare(ref, cand, labels, Tolerance(None, 0.95))
    assert r.top1_agreement == pytest.approx(0.9) and r.max_abs_diff == pytest.approx(5.0)
    assert r.reference_top1 == 100.0 and r.candidate_top1 == 90.0 and not r.passed
    with pytest.raises(EdgemapError, match=r"m -> X: parity check failed .* required top-1 agreement >= 95.00%"):
        gate(r, "m -> X")
    assert compare(ref, cand, tolerance=Tolerance(None, 0.9)).passed
    assert not compare(ref, ref + 0.01, tolerance=Tolerance(1e-3, 0.0)).passed  # drift alone is enough to refuse


def test_nan_output_fails_and_shape_mismatch_is_an_error() -> None:
    ref = np.ones((4, 3), np.float32)
    bad = ref.copy()
    bad[0, 0] = np.nan
    assert not compare(ref, bad, tolerance=Tolerance(None, 0.0)).passed
    with pytest.raises(EdgemapError, match="outputs of shape"):
        compare(ref, np.ones((4, 5), np.float32))


def test_tolerance_validation_and_batching() -> None:
    with pytest.raises(EdgemapError, match="min_agreement"):
        Tolerance(1e-3, 1.5)
    with pytest.raises(EdgemapError, match="max_abs_diff"):
        Tolerance(0.0, 0.5)
    seen = []
    out = run_batches(lambda x: (seen.append(len(x)), x * 2)[1], np.ones((250, 2), np.float32), batch=100)
    assert seen == [100, 100, 50] and out.shape == (250, 2) and out.dtype == np.float32
