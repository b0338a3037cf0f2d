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
