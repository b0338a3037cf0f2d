"""The map's robust choice: ties by overlapping spreads go to the more accurate, then the smaller; lines never
say 'faster' inside the noise; the CPU line names its INT8 instructions."""

from types import SimpleNamespace

from edgemap.runtime.isolated import IsolatedResult, Timing
from edgemap.search.robust import choose_finalist, comparison, cpu_line, summary_lines, timing_rows, verdict_line


def cand(prune, precision, cal, threads, acc, size, latency, path):
    c = {"prune_ratio": prune, "precision": precision, "calibration": cal, "backend": "onnxruntime", "threads": threads}
    from edgemap.search.candidate import Candidate

    return {"key": Candidate(**c).key(), "candidate": c, "accuracy": acc, "size_bytes": size, "latency_ms": latency,
            "model_path": path, "accuracy_drop": 90 - acc, "violations": []}


A = cand(0.0, "int8", "minmax", 1, 88.0, 400, 0.50, "a.onnx")
A2 = cand(0.0, "int8", "minmax", 2, 88.0, 400, 0.45, "a.onnx")  # the same file at 2 threads
B = cand(0.25, "int8", "minmax", 1, 89.5, 300, 0.48, "b.onnx")
FP = cand(0.0, "fp32", "none", 1, 90.0, 900, 1.0, "fp.onnx")


def job():
    return SimpleNamespace(ctx=SimpleNamespace(fp32_onnx="fp.onnx"), torch_model=False, model="m.onnx")


def result(times):
    return IsolatedResult(tuple(Timing(n, t, tuple(v)) for (n, t), v in times.items()), 3, 50, {"method": "isolated"})


def test_each_file_is_timed_once_whatever_its_roles():
    rows, roles = timing_rows(job(), [A, A2, B], [A, A2, B, FP], 2.0)
    assert rows == {"p0.25-int8-minmax-onnxruntime": ("onnxruntime", "b.onnx"),
                    "p0-int8-minmax-onnxruntime": ("onnxruntime", "a.onnx"), "onnxruntime_fp32": ("onnxruntime", "fp.onnx")}
    assert roles["plain_int8:" + A2["key"]] == "p0-int8-minmax-onnxruntime"  # a finalist is also the plain INT8 row


def test_overlapping_spreads_are_a_tie_won_by_the_more_accurate_and_clear_gaps_by_the_faster():
    rows, roles = timing_rows(job(), [A, A2, B], [A, A2, B, FP], 2.0)
    a, b = "p0-int8-minmax-onnxruntime", "p0.25-int8-minmax-onnxruntime"
    tie = result({(a, 1): [0.50, 0.55, 0.60], (a, 2): [0.40, 0.44, 0.52], (b, 1): [0.45, 0.47, 0.58], (b, 2): [0.6, 0.7, 0.8],
                  ("onnxruntime_fp32", 1): [1.0, 1.1, 1.2], ("onnxruntime_fp32", 2): [0.9, 1.0, 1.1]})
    chosen, ranking = choose_finalist(tie, roles, [A, A2, B])
    assert chosen is B and ranking[0] == b  # a (0.44 ms) and b (0.47 ms) overlap: b is more accurate
    clear = result({**{k: v for k, v in [((a, 1), [0.5]), ((a, 2), [0.20, 0.21, 0.22])]}, (b, 1): [0.45, 0.47, 0.58],
                    (b, 2): [0.6, 0.7, 0.8], ("onnxruntime_fp32", 1): [1.0, 1.1, 1.2], ("onnxruntime_fp32", 2): [1.0]})
    chosen, _ = choose_finalist(clear, roles, [A, A2, B])
    assert chosen is A2  # the winning file at its best thread count, as the search measured it
    cmp = comparison(clear, rows, roles, chosen)
    assert cmp["onnxruntime_fp32"]["verdict"] == "faster" and cmp["chosen"]["verdict"] == "same"
    assert verdict_line(cmp["onnxruntime_fp32"], "ONNX Runtime FP32").endswith("faster than ONNX Runtime FP32")
    cmp_b = comparison(tie, rows, roles, B)
    assert cmp_b["best_plain_int8"]["verdict"] == "tie"
    assert "faster" not in verdict_line(cmp_b["best_plain_int8"], "plain INT8")


def test_a_reference_that_is_the_chosen_file_itself_is_said_to_be_so_at_any_thread_count():
    """Chosen on estimates at 1 thread, the same file is fastest at 2: never 'x0.77 the speed of' itself."""
    rows, roles = timing_rows(job(), [A, B], [A, B, FP], 2.0)
    a = "p0-int8-minmax-onnxruntime"
    r = result({(a, 1): [0.50, 0.51], (a, 2): [0.38, 0.39], ("p0.25-int8-minmax-onnxruntime", 1): [0.6, 0.61],
                ("onnxruntime_fp32", 1): [1.0, 1.1]})
    cmp = comparison(r, rows, roles, A)
    assert cmp["best_plain_int8"]["key"] == A["key"] and cmp["best_plain_int8"]["verdict"] == "same"
    assert verdict_line(cmp["best_plain_int8"], "the best plain INT8 conversion") == \
        "the best plain INT8 conversion is the chosen mapping's own model file"


def test_the_timing_lines_name_the_cpu_and_its_vnni():
    assert "(AVX2, no VNNI)" in cpu_line({"cpu": "Some CPU", "cpu_flags": ["avx2"], "load_average": [3.2, 3, 3]})
    assert "(AVX-512, VNNI: avx512_vnni)" in cpu_line({"cpu": "X", "cpu_flags": ["avx2", "avx512f", "avx512_vnni"]})
    rows, roles = timing_rows(job(), [A, B], [A, B, FP], 2.0)
    r = result({("p0-int8-minmax-onnxruntime", 1): [0.5, 0.6], ("p0.25-int8-minmax-onnxruntime", 1): [0.3, 0.31],
                ("onnxruntime_fp32", 1): [0.55, 0.9]})
    chosen, ranking = choose_finalist(r, roles, [A, B])
    summary = {"timing": {"threads": [1], "rounds": 2, "runs": 50, "cpu": "X (AVX2, no VNNI)"},
               "finalists": {n: {**r.best(n).to_dict()} for n in ranking}, "comparison": comparison(r, rows, roles, chosen)}
    text = "\n".join(summary_lines(summary))
    assert "X (AVX2, no VNNI)" in text and "finalists" in text and "faster than ONNX Runtime FP32" in text
