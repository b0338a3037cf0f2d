"""The paired drop: its SE comes from the discordant images only; the verdict against a bound."""

from __future__ import annotations

import numpy as np
import pytest

from edgemap.train.paired import paired_drop


def test_a_student_that_keeps_its_teachers_decisions_is_judged_tightly() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    teacher = np.where(rng.random(2000) < 0.6, labels, (labels + 1) % 10)  # 60 % right
    student = teacher.copy()
    flip = np.flatnonzero(teacher == labels)[:20]  # 20 images: right -> wrong (1 point)
    student[flip] = (labels[flip] + 1) % 10
    p = paired_drop(teacher, student, labels)
    assert p.drop == pytest.approx(1.0) and p.discordant == 20 and p.agreement == pytest.approx(99.0)
    assert p.se == pytest.approx(100 * np.sqrt(20 - 20 ** 2 / 2000) / 2000)  # ~0.22, vs ~1.1 per accuracy
    assert p.se < 0.25 < 100 * np.sqrt(0.6 * 0.4 / 2000)
    assert p.verdict(1.5) == "within" and p.verdict(0.5) == "outside" and p.verdict(1.0) == "undecided"
    assert "drop 1.00 ± 0.22 points" in p.text() and "on 2,000 images" in p.text()


def test_many_disagreements_leave_a_small_measured_drop_undecided() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 500)
    teacher = np.where(rng.random(500) < 0.5, labels, (labels + 1) % 10)
    student = np.where(rng.random(500) < 0.5, labels, (labels + 2) % 10)  # independent: ~250 discordant
    p = paired_drop(teacher, student, labels)
    assert p.discordant == 249 and p.se > 3 and p.drop == pytest.approx(4.6)
    assert p.verdict(0.5) == "undecided"  # 4.6 points measured, yet within noise of a 0.5-point bound
    with pytest.raises(ValueError):
        paired_drop(teacher[:3], student, labels)
