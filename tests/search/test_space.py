import pytest

from edgemap.errors import EdgemapError
from edgemap.search.space import Candidate, SearchSpace


def test_grid_counts_and_calibration_only_for_int8():
    space = SearchSpace(prune_ratios=(0.0, 0.5), backends=("onnxruntime",), threads=(1,))
    grid = space.grid()
    assert len(grid) == 2 * (2 + 3)
    assert all((c.calibration == "none") == (c.precision != "int8") for c in grid)
    assert len({c.key() for c in grid}) == len(grid)


def test_device_and_backend_limits_remove_candidates_before_running():
    space = SearchSpace(prune_ratios=(0.0, 0.5), backends=("onnxruntime", "openvino"), threads=(1,),
                        device_runtimes=("onnxruntime",), device_dtypes=("fp32", "int8"), can_prune=False)
    grid = space.grid()
    assert {c.backend for c in grid} == {"onnxruntime"}
    assert {c.precision for c in grid} == {"fp32", "int8"}
    assert all(c.prune_ratio == 0 for c in grid)
    skipped = space.skipped()
    assert skipped[Candidate(0.0, "fp16", "none", "onnxruntime", 1).key()] == "the device has no fp16 support"
    assert skipped[Candidate(0.5, "fp32", "none", "onnxruntime", 1).key()] == "pruning needs a torch model and training data"
    assert skipped[Candidate(0.0, "fp32", "none", "openvino", 1).key()] == "the device does not run openvino"


def test_litert_int8_keeps_one_calibration():
    space = SearchSpace(prune_ratios=(0.0,), precisions=("int8",), backends=("litert",), threads=(1,))
    assert [c.calibration for c in space.grid()] == ["minmax"]


@pytest.mark.parametrize("kwargs", [dict(prune_ratios=(1.0,)), dict(backends=("tensorrt",)), dict(threads=(0,)),
                                    dict(precisions=())])
def test_bad_space_is_refused(kwargs):
    with pytest.raises(EdgemapError, match="search space"):
        SearchSpace(**kwargs)


def test_litert_is_skipped_with_its_reason_when_the_model_is_not_a_checkpoint():
    space = SearchSpace(backends=("onnxruntime", "litert"), threads=(1,), litert_source=False)
    assert all(c.backend == "onnxruntime" for c in space.grid())
    reasons = set(space.skipped().values())
    assert any("LiteRT conversion starts from PyTorch" in r for r in reasons)
    assert any(c.backend == "litert" for c in SearchSpace(backends=("onnxruntime", "litert"), threads=(1,)).grid())
