from hypothesis import given
from hypothesis import strategies as st

from edgemap.search.pareto import dominates, pareto_front

OBJ = {"acc": "max", "lat": "min"}


def test_front_of_a_known_set():
    pts = [{"acc": 90, "lat": 5}, {"acc": 89, "lat": 2}, {"acc": 88, "lat": 3}, {"acc": 90, "lat": 6}, {"acc": 91, "lat": 9}]
    assert pareto_front(pts, OBJ) == [0, 1, 4]


def test_equal_points_do_not_dominate_each_other():
    p = {"acc": 1, "lat": 1}
    assert not dominates(p, dict(p), OBJ)
    assert pareto_front([p, dict(p)], OBJ) == [0, 1]


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=30))
def test_front_is_non_dominated_and_dominates_the_rest(pairs):
    pts = [{"acc": a, "lat": b} for a, b in pairs]
    front = pareto_front(pts, OBJ)
    assert front
    for i in front:
        assert not any(dominates(pts[j], pts[i], OBJ) for j in range(len(pts)))
    for i in set(range(len(pts))) - set(front):
        assert any(dominates(pts[j], pts[i], OBJ) for j in front)


def test_a_latency_edge_within_the_band_is_no_edge():
    fast, accurate = {"acc": 89, "lat": 1.00}, {"acc": 90, "lat": 1.05}  # on the strict front both
    assert pareto_front([fast, accurate], OBJ) == [0, 1]
    assert pareto_front([fast, accurate], OBJ, {"lat": [0.06, 0.06]}) == [1]  # fast's edge is within the estimate's error
    assert pareto_front([fast, accurate], OBJ, {"lat": [0.06, 0.01]}) == [1]  # a pair compares within the larger band
    assert pareto_front([fast, accurate], OBJ, {"lat": [0.03, 0.03]}) == [0, 1]
    assert dominates(accurate, fast, OBJ, {"lat": 0.05}) and not dominates(accurate, fast, OBJ, {"lat": 0.04})


def test_bands_must_name_an_objective_and_cover_every_point():
    import pytest

    with pytest.raises(ValueError, match="one value per point"):
        pareto_front([{"acc": 1, "lat": 1}], OBJ, {"lat": [0.1, 0.1]})
    with pytest.raises(ValueError, match="name an objective"):
        pareto_front([{"acc": 1, "lat": 1}], OBJ, {"size": [0.1]})


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 20), st.sampled_from([0.0, 0.05, 0.2])), min_size=1, max_size=30))
def test_with_bands_the_front_is_never_empty_and_non_dominated(rows):
    pts = [{"acc": a, "lat": b} for a, b, _ in rows]
    banded = pareto_front(pts, OBJ, {"lat": [w for _, _, w in rows]})
    assert banded  # no cycles: accuracy and size order strictly, latency strictly beyond a band
    assert pareto_front(pts, OBJ, {"lat": [0.0] * len(pts)}) == pareto_front(pts, OBJ)
    for i in banded:
        assert not any(dominates(pts[j], pts[i], OBJ, {"lat": max(rows[i][2], rows[j][2])}) for j in range(len(pts)))
