"""The map's choice among its fastest feasible mappings, and its comparison rows, timed the way they will run.

Every model file (the finalists, ONNX Runtime FP32, the best plain INT8 conversions, PyTorch eager, the peers with
--compare-peers) is timed alone in a fresh process at every thread count the search tried, in alternating rounds
(edgemap.runtime.isolated), all in one run. A model's figure is the median of its round medians at its best thread
count, with the spread (lowest..highest round median). Finalists whose spreads overlap are a tie: the more accurate,
then the smaller, is chosen. A comparison says "faster" or "slower" only when the spreads do not overlap.
"""

from __future__ import annotations

from edgemap.errors import EdgemapError
from edgemap.runtime.isolated import IsolatedResult, Timing, compare, same_ranking, time_in_bursts, time_isolated
from edgemap.search.candidate import Candidate

FINALISTS = 4  # the fastest feasible model files timed again
PLAIN_INT8 = 2  # unpruned INT8 conversions timed as the "plain INT8" reference
TIMING_RUNS = 50  # timed batch-1 runs per process (each process also warms up)


def timing_rows(job, feasible: list[dict], trials: list[dict], max_drop: float | None,  # noqa: ANN001 - Job
                extra: dict[str, tuple[str, str]] | None = None) -> tuple[dict, dict]:
    """({name: (backend, model file)}, {role: name}): finalists first, then the references, each file once.
    Roles: 'finalist:<key>' per finalist, 'onnxruntime_fp32', 'plain_int8:<key>', 'torch_eager_fp32', and `extra`'s names."""
    rows: dict[str, tuple[str, str]] = {}
    roles: dict[str, str] = {}
    by_path: dict[str, str] = {}

    def add(role: str, name: str, backend: str, path: str) -> None:
        key = f"{backend}:{path}"
        if key not in by_path:
            by_path[key] = name
            rows[name] = (backend, str(path))
        roles[role] = by_path[key]

    for m in _fastest_files(feasible, FINALISTS):
        add(f"finalist:{m['key']}", _file_key(m), m["candidate"]["backend"], m["model_path"])
    add("onnxruntime_fp32", "onnxruntime_fp32", "onnxruntime", job.ctx.fp32_onnx)
    plain = [m for m in trials if m.get("error") is None and m["candidate"]["prune_ratio"] == 0
             and m["candidate"]["precision"] == "int8" and m["accuracy_drop"] <= (1e9 if max_drop is None else max_drop)]
    for m in _fastest_files(plain, PLAIN_INT8):
        add(f"plain_int8:{m['key']}", _file_key(m), m["candidate"]["backend"], m["model_path"])
    if job.torch_model:
        add("torch_eager_fp32", "torch_eager_fp32", "torch", str(job.model))
    for name, (backend, path) in (extra or {}).items():
        add(name, name, backend, path)
    return rows, roles


def _file_key(m: dict) -> str:
    return Candidate(**m["candidate"]).artifact_key()


def _fastest_files(ms: list[dict], n: int) -> list[dict]:
    """The n fastest (search latency) candidates with distinct model files."""
    out, seen = [], set()
    for m in sorted(ms, key=lambda m: m["latency_ms"]):
        if m["model_path"] not in seen:
            seen.add(m["model_path"])
            out.append(m)
    return out[:n]


def time_rows(rows: dict[str, tuple[str, str]], threads: tuple[int, ...], rounds: int) -> IsolatedResult:
    """Every row alone in a fresh process, at every thread count, `rounds` alternating rounds."""
    return time_isolated({n: p for n, (_, p) in rows.items()}, tuple(sorted(set(threads))), rounds, TIMING_RUNS,
                         warmup=10, backends={n: b for n, (b, _) in rows.items()})


def choose_finalist(result: IsolatedResult, roles: dict[str, str], feasible: list[dict]) -> tuple[dict, list[str]]:
    """The chosen candidate among the finalists (median at the best thread count; ties: accuracy, then size) and
    the ranking of their files. The candidate is the one of the winning file at its best thread count when the
    search measured it, else that file's fastest candidate."""
    from edgemap.runtime.isolated import choose

    names = sorted({roles[r] for r in roles if r.startswith("finalist:")})
    by_name = {n: [m for m in feasible if _file_key(m) == n] for n in names}
    sub = IsolatedResult(tuple(t for t in result.timings if t.name in by_name), result.rounds, result.runs, result.evidence)
    ranking = choose(sub, {n: ms[0]["accuracy"] for n, ms in by_name.items()},
                     {n: ms[0]["size_bytes"] for n, ms in by_name.items()})
    best = sub.best(ranking[0])
    own = by_name[ranking[0]]
    exact = [m for m in own if m["candidate"]["threads"] == best.threads]
    return (exact or sorted(own, key=lambda m: m["latency_ms"]))[0], ranking


def burst_check(result: IsolatedResult, rows: dict[str, tuple[str, str]], ranking: list[str]) -> dict | None:
    """The finalists timed again all in this process, in alternating bursts, at the lowest thread count timed; whether
    that ranks them as the isolated timing at the same thread count does (no pair strictly ordered the other way).
    The choice stays with the isolated timing (the way a model runs when deployed); a disagreement is reported."""
    if len(ranking) < 2:
        return None
    threads = min(t.threads for t in result.timings)
    iso = IsolatedResult(tuple(t for t in result.timings if t.name in ranking and t.threads == threads),
                         result.rounds, result.runs, result.evidence)
    try:
        bursts = time_in_bursts({n: rows[n][1] for n in ranking}, threads, result.rounds, TIMING_RUNS,
                                backends={n: rows[n][0] for n in ranking})
    except EdgemapError as exc:
        return {"threads": threads, "error": str(exc)}
    return {"threads": threads, "same_ranking": same_ranking(iso, bursts), "isolated_order": _by_median(iso, ranking),
            "burst_order": _by_median(bursts, ranking), "burst_ms": {n: bursts.best(n).to_dict() for n in ranking}}


def _by_median(result: IsolatedResult, names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: result.best(n).median_ms)


def burst_line(check: dict | None) -> str | None:
    """A line when in-process bursts rank the finalists otherwise than the isolated timing (or could not run)."""
    if not check:
        return None
    if "error" in check:
        return f"in-process burst check of the finalists not run: {check['error']}"
    if check["same_ranking"]:
        return None
    burst = " < ".join(f"{n} {check['burst_ms'][n]['median_ms']:.4f}" for n in check["burst_order"])
    return (f"in-process bursts ({check['threads']} thread(s), all finalists in one process) rank the finalists "
            f"differently: {burst} ms, against "
            f"{' < '.join(check['isolated_order'])} timed alone; the choice follows the isolated timing (as deployed)")


def timing_of(result: IsolatedResult, name: str, threads: int | None = None) -> Timing:
    """`name` at `threads` (None or not timed: its best thread count)."""
    own = [t for t in result.timings if t.name == name and t.threads == threads]
    return own[0] if own else result.best(name)


def comparison(result: IsolatedResult, rows: dict, roles: dict[str, str], chosen: dict) -> dict:
    """Per role: backend, file, best thread count, median and spread, x the chosen's time, verdict vs the chosen."""
    mine = timing_of(result, _file_key(chosen), chosen["candidate"]["threads"])
    out = {"chosen": _row(mine, rows[mine.name], mine, "chosen")}
    for role, name in roles.items():
        if role.startswith("finalist:"):
            continue
        out[role] = _row(result.best(name), rows[name], mine, role)
    plain = [r for r in out if r.startswith("plain_int8:")]
    if plain:
        best = min(plain, key=lambda r: out[r]["p50_ms"])
        out["best_plain_int8"] = {**out[best], "key": best.split(":", 1)[1]}
    return out


def _row(t: Timing, row: tuple[str, str], chosen: Timing, label: str) -> dict:
    lo, hi = t.spread_ms
    # the chosen model file itself (as the best plain INT8, say) is "same" at any thread count: timing one file
    # against itself only measures the noise
    verdict = compare(chosen, t) if t.name != chosen.name else "same"
    return {"backend": row[0], "model": row[1], "threads": t.threads, "p50_ms": round(t.median_ms, 4),
            "spread_ms": [round(lo, 4), round(hi, 4)], "round_ms": [round(v, 4) for v in t.round_ms],
            "speedup_vs_chosen": round(t.median_ms / chosen.median_ms, 3),
            "speedup_range": [round(lo / chosen.spread_ms[1], 3), round(hi / chosen.spread_ms[0], 3)],
            "verdict": verdict, "label": label}


def cpu_line(evidence: dict) -> str:
    """'Intel Xeon ... (AVX2, no VNNI), load 3.1': the CPU and its INT8 dot-product instructions."""
    flags = evidence.get("cpu_flags") or []
    vnni = [f for f in flags if "vnni" in f]
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "NEON" if "neon" in flags else "no AVX2"
    load = evidence.get("load_average")
    return (f"{evidence.get('cpu') or 'unknown CPU'} ({isa}, {'VNNI: ' + '/'.join(vnni) if vnni else 'no VNNI'})"
            + (f", load average {load[0]:.1f}" if load else ""))


def verdict_line(row: dict, label: str) -> str:
    """'x2.10 (x1.90-2.31) faster than X' / '... a tie with X (spreads overlap)' — never 'faster' inside the noise."""
    ratio, (lo, hi) = row["speedup_vs_chosen"], row["speedup_range"]
    text = f"x{ratio:.2f} (x{lo:.2f}-{hi:.2f})"
    if row["verdict"] == "faster":
        return f"{text} faster than {label}"
    if row["verdict"] == "same":
        return f"{label} is the chosen mapping's own model file"
    if row["verdict"] == "slower":
        return f"{text} the speed of {label}: slower"
    return f"{text} the speed of {label}: a tie (spreads overlap)"


REFERENCES = (("torch_eager_fp32", "PyTorch eager FP32"), ("onnxruntime_fp32", "ONNX Runtime FP32"),
              ("best_plain_int8", "the best plain INT8 conversion"))


def summary_lines(summary: dict) -> list[str]:
    """The map's timing lines: how it was timed (CPU, VNNI, load), the finalists, the chosen against each reference."""
    timing, cmp = summary.get("timing"), summary.get("comparison") or {}
    if not timing or "chosen" not in cmp:
        return []
    threads = ",".join(str(t) for t in timing["threads"])
    c = cmp["chosen"]
    lines = [f"timed alone in fresh processes ({timing['rounds']} alternating round(s) x {timing['runs']} runs, threads "
             f"{threads}) on {timing['cpu']}; shared machine, so spreads are wide",
             f"chosen: median {c['p50_ms']:.4f} ms (rounds {c['spread_ms'][0]:.4f}-{c['spread_ms'][1]:.4f}) at {c['threads']} thread(s)"]
    finals = summary.get("finalists") or {}
    if len(finals) > 1:
        lines.append("finalists (median, range; overlapping ranges are ties, broken by accuracy then size): " + ", ".join(
            f"{n} {v['median_ms']:.4f} ({v['spread_ms'][0]:.4f}-{v['spread_ms'][1]:.4f})" for n, v in finals.items()))
    if line := burst_line(timing.get("bursts")):
        lines.append(line)
    for role, label in REFERENCES:
        if role in cmp:
            name = f"{label} ({cmp[role]['key']})" if role == "best_plain_int8" else label
            lines.append(verdict_line(cmp[role], name))
    if summary.get("peers"):
        lines += peer_lines(summary["peers"])
    return lines


def peer_lines(peers: dict) -> list[str]:
    """One line per peer (top-1, drop, median and range, verdict against the chosen), then the best-peer verdict."""
    lines = []
    for p in peers["peers"]:
        if "error" in p:
            lines.append(f"peer {p['name']}: not built ({p['error']})")
        elif "timing" in p:
            t = p["timing"]
            lines.append(f"peer {p['name']} ({p['backend']}): top-1 {p['accuracy']:.2f}% (drop {p['accuracy_drop']:.2f}), "
                         f"median {t['p50_ms']:.4f} ms ({t['spread_ms'][0]:.4f}-{t['spread_ms'][1]:.4f}), {t['threads']} thread(s)")
    if peers.get("best_peer"):
        lines.append(f"chosen vs the best peer: {peers['chosen_vs_best_peer']}, top-1 {peers['accuracy_vs_best_peer']:+.2f} points")
    return lines
