"""A report is a list of sections: a title, paragraphs, tables and embedded images, built from stored runs.

A section is a plain dict so that the template stays dumb: {"title", "notes": [str], "tables": [{"caption",
"columns", "rows"}], "images": [{"alt", "uri"}], "thumbs": [{"uri", "caption"}]}.
"""

from __future__ import annotations

from pathlib import Path

from edgemap.report import plots


def section(title: str, notes=None, tables=None, images=None, thumbs=None) -> dict:  # noqa: ANN001
    """A section dict with empty parts filled in."""
    return {"title": title, "notes": notes or [], "tables": tables or [], "images": images or [], "thumbs": thumbs or []}


def table(caption: str, columns: list[str], rows: list[list]) -> dict:
    """A table; cells are formatted by the template (floats to 4 significant digits)."""
    return {"caption": caption, "columns": columns, "rows": rows}


def _fmt_bytes(b: float | None) -> str:
    return "-" if b is None else f"{b / 1024:.1f} KiB" if b < 1 << 20 else f"{b / (1 << 20):.2f} MiB"


def _basis(trial: dict) -> str:
    return "measured" if "measured" in str(trial.get("latency_basis", "")) else "estimated"


# --- map runs -----------------------------------------------------------------------------------------
def map_sections(run: dict) -> list[dict]:
    """Pareto plots, before -> after, reference conversions, per-layer cost, device fit for a map run."""
    s = run["payload"] or {}
    ok = [t for t in s.get("trials", []) if t.get("error") is None]
    chosen = s.get("chosen")
    key = chosen["key"] if chosen else None
    out = [section(f"Mapping search on {s.get('device')}: {len(ok)} candidates",
                   notes=[f"Objective: {s.get('objective')}; constraints: {s.get('constraints')}.", f"Data: {s.get('data')}.",
                          f"Chosen: {key}." if key else "No candidate met the constraints; nearest: "
                          + "; ".join(f"{m['key']} ({', '.join(m.get('violations', []))})" for m in s.get("nearest", []))],
                   images=[{"alt": "accuracy vs latency",
                            "uri": plots.pareto(ok, s.get("front", []), key, "latency_ms", "latency, ms (batch 1)")},
                           {"alt": "accuracy vs size",
                            "uri": plots.pareto(ok, s.get("front", []), key, "size_bytes", "model file, bytes")}],
                   tables=[candidates_table(ok, s.get("front", []), key)])]
    if chosen:
        out.append(before_after(s, ok, chosen))
    if chosen and chosen.get("confusion") and s.get("class_names"):  # when the search kept the chosen one's confusion
        names = list(s["class_names"])
        out += eval_sections({"label": key, "model": None, "payload": {
            **chosen, "top1": chosen["accuracy"], "top1_exact": chosen.get("accuracy_exact"), "class_names": names,
            "n": sum(map(sum, chosen["confusion"])), "confusion": square(chosen["confusion"], len(names)), "data": s.get("data")}})
    if s.get("comparison"):
        out.append(reference_section(s["comparison"]))
    # nothing fits: the nearest miss's cost says why; no choice yet (a study): the front's fastest
    front = sorted((t for t in ok if t["key"] in s.get("front", [])), key=lambda t: t[s.get("objective_key") or "latency_ms"])
    shown = chosen or (s.get("nearest") or [None])[0] or (front or [None])[0]
    out += cost_sections(chosen_onnx(shown) if shown else None, s.get("device") or "host", shown)
    return out


def square(matrix: list[list[int]], n: int) -> list[list[int]]:
    """A confusion matrix padded with zeros to n classes (the classes no image had nor was predicted as are cut off)."""
    rows = [list(r) + [0] * (n - len(r)) for r in matrix]
    return rows + [[0] * n for _ in range(n - len(rows))]


def candidates_table(ok: list[dict], front: list[str], chosen: str | None) -> dict:
    rows = [[t["key"] + (" ★" if t["key"] == chosen else ""), t["accuracy"], t.get("accuracy_drop"), t["latency_ms"], _basis(t),
             t.get("energy_mj"), _fmt_bytes(t.get("size_bytes")), "yes" if t["key"] in front else "",
             "yes" if not t.get("violations") else "; ".join(t["violations"])] for t in sorted(ok, key=lambda t: t["latency_ms"])]
    return table("every candidate, fastest first (energy: estimated)", ["candidate", "top-1 %", "drop", "latency ms", "latency basis",
                 "energy mJ", "size", "front", "fits"], rows)


def before_after(s: dict, ok: list[dict], chosen: dict) -> dict:
    """FP32 ONNX Runtime (the unmapped model) against the chosen mapping."""
    base = next((t for t in ok if t["candidate"].get("prune_ratio", 0) == 0 and t["candidate"].get("precision") == "fp32"
                 and t["candidate"].get("backend") == "onnxruntime"), None)
    ref = (s.get("comparison") or {}).get("onnxruntime_fp32") or {}
    rows = [["top-1 % (all images)", s.get("baseline_accuracy"), chosen["accuracy"], "measured"],
            ["top-1 % (exact images)", base and base.get("accuracy_exact"), chosen.get("accuracy_exact"), "measured"],
            ["latency ms, p50 same run", ref.get("p50_ms"), ((s.get("comparison") or {}).get("chosen") or {}).get("p50_ms"),
             "measured on this host"],
            [f"latency ms ({_basis(chosen)})", base and base["latency_ms"], chosen["latency_ms"], _basis(chosen)],
            ["model file", _fmt_bytes(base and base.get("size_bytes")), _fmt_bytes(chosen.get("size_bytes")), "measured"],
            ["peak RAM", _fmt_bytes(base and base.get("ram_bytes")), _fmt_bytes(chosen.get("ram_bytes")), "estimated"],
            ["energy mJ / inference", base and base.get("energy_mj"), chosen.get("energy_mj"), "estimated"]]
    return section("Before → after: the chosen mapping", tables=[table(
        f"FP32 on ONNX Runtime{' (' + base['key'] + ')' if base else ''} → {chosen['key']}", ["figure", "before", "after", "basis"], rows)])


def _spread(spread: list | None) -> str | None:
    """'lo-hi' of the rounds' medians (each reference is timed alone in fresh processes, edgemap.search.robust)."""
    return f"{spread[0]:.4f}-{spread[1]:.4f}" if spread else None


def reference_section(comparison: dict) -> dict:
    """The same run's batch-1 timings of the reference conversions (PyTorch eager, ORT FP32, plain INT8)."""
    rows = [[k, v.get("backend"), v.get("threads"), v.get("p50_ms"), _spread(v.get("spread_ms")), v.get("speedup_vs_chosen")]
            for k, v in comparison.items()]
    return section("Reference conversions, same run", notes=["Batch-1 latency on this host, each model timed alone in fresh processes in "
                   "alternating rounds (median of the rounds' medians, and their range); × = the reference's time over the chosen's."],
                   tables=[table("reference timings", ["reference", "backend", "threads", "median ms", "rounds' range ms", "× chosen's time"], rows)])


def chosen_onnx(chosen: dict) -> Path | None:
    """An ONNX file of the chosen mapping (its own, or the FP32 export beside a .tflite/.xml) if still on disk."""
    path = Path(chosen.get("model_path") or "")
    if path.suffix == ".onnx" and path.is_file():
        return path
    fp32 = path.with_name("fp32.onnx")
    return fp32 if fp32.is_file() else None


def cost_sections(model_file: Path | None, device: str, chosen: dict | None = None) -> list[dict]:
    """Per-layer latency and MACs, and the device-fit table across the catalogue (both need the ONNX file)."""
    if model_file is None:
        return [section("Per-layer cost and device fit", notes=["The model file is no longer on disk, so the "
                        "per-layer estimate and the device-fit table cannot be computed for this run."])]
    from edgemap.devices.catalogue import list_profiles
    from edgemap.devices.estimate import estimate_cost, with_precision
    from edgemap.devices.graph import analyse

    cost = analyse(model_file)
    precision = (chosen or {}).get("candidate", {}).get("precision") or cost.precision
    cost = with_precision(cost, precision) if precision != cost.precision else cost
    profiles = list_profiles()
    main = next((p for p in profiles if p.name == device), profiles[0])
    est = estimate_cost(cost, main, precision)
    layers = est.layers
    per_layer = section(f"Per-layer cost on {main.name} ({precision}, estimated)", notes=[
        f"{model_file.name}: {cost.macs / 1e6:.2f} M MACs in {len(cost.layers)} layers; per-layer roofline estimate."],
        images=[{"alt": "per-layer latency and MACs", "uri": plots.layer_bars([lay.name for lay in layers],
                 [lay.latency_s * 1e6 for lay in layers], [lay.macs for lay in layers])}] if layers else [],
        tables=[table("the 10 costliest layers", ["layer", "op", "MMACs", "latency µs (est.)", "bound"],
                      [[lay.name, lay.op_type, lay.macs / 1e6, lay.latency_s * 1e6, lay.bound]
                       for lay in sorted(layers, key=lambda x: -x.latency_s)[:10]])])
    rows = []
    for p in profiles:
        e = estimate_cost(cost, p, precision)
        measured = chosen is not None and p.name == device and _basis(chosen) == "measured"
        lat = chosen["latency_ms"] if measured else e.latency_s.value * 1e3
        rows.append([p.name, lat, "measured" if measured else "estimated", _fmt_bytes(e.peak_ram_bytes.value),
                     _fmt_bytes(e.flash_bytes.value), "yes" if e.fits else "no: " + "; ".join(e.violations)])
    fit = section("Device fit across the catalogue", notes=["RAM and flash are estimated from the graph for every profile; "
                  "latency is measured only where the run measured it."],
                  tables=[table(f"{model_file.name} ({precision})", ["device", "latency ms", "basis", "peak RAM", "flash", "fits"], rows)])
    return [per_layer, fit]


# --- eval, bench, train, benchmark runs -----------------------------------------------------------------
def eval_sections(run: dict) -> list[dict]:
    """Accuracy, the confusion matrix and per-class accuracy of an eval run."""
    p = run["payload"] or {}
    notes = [f"top-1 {p.get('top1')} % on {p.get('n')} images"
             + (f"; {p.get('top1_exact')} % on the {p.get('n_exact')} exact ones" if p.get("top1_exact") is not None else "")
             + (f" of {p['data']}" if p.get("data") else "")]
    out = [section(f"Evaluation: {run.get('label') or run.get('model')}", notes=notes)]
    if p.get("confusion") and p.get("class_names"):
        cm, names = p["confusion"], p["class_names"]
        per_class = [row[i] / max(sum(row), 1) * 100 for i, row in enumerate(cm)]
        out[0]["images"] = [{"alt": "confusion matrix", "uri": plots.confusion(cm, names)},
                            {"alt": "per-class accuracy", "uri": plots.bars(names, per_class, "top-1 % per true class")}]
        out[0]["tables"] = [table("per-class accuracy", ["class", "images", "top-1 %", "most often mistaken for"],
                                  [[n, sum(cm[i]), per_class[i], _worst(cm[i], i, names)] for i, n in enumerate(names)])]
    else:
        out[0]["notes"].append("This run did not record its confusion matrix.")
    if run.get("model") and str(run["model"]).endswith(".onnx") and Path(run["model"]).is_file():
        out += cost_sections(Path(run["model"]), run.get("device") or "host")
    return out


def _worst(row: list[int], i: int, names: list[str]) -> str:
    others = [(v, j) for j, v in enumerate(row) if j != i and v]
    return f"{names[max(others)[1]]} ({max(others)[0]})" if others else "-"


def bench_sections(runs: list[dict]) -> list[dict]:
    """Latency percentiles and throughput of bench runs, one row per model."""
    rows, labels, p50 = [], [], []
    for r in runs:
        m = {x["name"]: x["value"] for x in r["metrics"] if not x["subject"]}
        rows.append([r.get("label"), r.get("backend"), m.get("latency_p50_ms"), m.get("latency_p90_ms"), m.get("latency_p99_ms"),
                     m.get("latency_std_ms"), m.get("throughput_b1"), _fmt_bytes(m.get("size_bytes")), m.get("peak_rss_mib")])
        if m.get("latency_p50_ms") is not None:
            labels.append(r.get("label") or r["id"])
            p50.append(m["latency_p50_ms"])
    images = [{"alt": "p50 latency", "uri": plots.bars(labels, p50, "p50 latency, ms")}] if p50 else []
    return [section("Benchmarks (measured on this host)", images=images,
                    tables=[table("batch-1 latency and throughput", ["model", "backend", "p50 ms", "p90 ms", "p99 ms", "std ms", "img/s @1",
                                                                     "size", "peak RSS MiB"], rows)])]


def generic_sections(run: dict) -> list[dict]:
    """Any other run (train, an imported benchmark file): its metrics table."""
    rows = [[m["subject"] or "(run)", m["name"], m["value"], m["unit"], m["basis"]] for m in run["metrics"]]
    out = [section(f"{run['command']}: {run.get('label') or run.get('model') or run['id']}",
                   tables=[table("metrics", ["subject", "metric", "value", "unit", "basis"], rows)])]
    model = Path(str(run.get("model")))
    if run["command"] in COSTED_COMMANDS and model.suffix == ".onnx" and model.is_file():  # what the ONNX file costs
        out += cost_sections(model, run.get("device") or "host")
    return out


COSTED_COMMANDS = ("estimate", "convert", "compress", "run", "demo")


def evidence_section(runs: list[dict]) -> dict:
    """Where and how each run measured: CPU, flags, versions, threads, runs, load average, commit, command."""
    rows = []
    for r in runs:
        ev = r.get("evidence") or {}
        rows.append([r["id"], r["created_at"], ev.get("cpu"), ", ".join(ev.get("cpu_flags") or []), ev.get("threads", ev.get("torch_threads")),
                     ev.get("runs"), str(ev.get("load_average")), ", ".join(f"{k} {v}" for k, v in (ev.get("versions") or {}).items()),
                     r.get("edgemap_commit") or "unknown", r.get("command_line")])
    return section("Evidence", notes=["Timings on a shared machine are noisy; compare runs only when CPU, threads and load agree."],
                   tables=[table("one row per run", ["run", "time (UTC)", "CPU", "flags", "threads", "runs", "load average",
                                                     "versions", "edgemap commit", "command"], rows)])
