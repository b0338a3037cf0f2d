"""Turn what a command returns (eval, bench, train, map) into RunRecords; plain dict handling, no torch."""

from __future__ import annotations

from pathlib import Path

from edgemap.results.records import Metric, RunRecord, current_command_line, file_sha256, new_run_id

LATENCY_KEYS = ("mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms")


def accuracy_metrics(result: dict, subject: str = "") -> list[Metric]:
    """top1 / top1_exact (%) and the image counts of an accuracy dict (EvalResult.to_dict())."""
    out = [Metric(k, result[k], "%", "measured", subject) for k in ("top1", "top1_exact") if result.get(k) is not None]
    out += [Metric(k, result[k], "images", "measured", subject) for k in ("n", "n_exact") if result.get(k) is not None]
    return out


def eval_run(result: dict, model: str | Path | None, data: str | None = None, backend: str | None = None,
             evidence: dict | None = None) -> RunRecord:
    """`edgemap eval`: accuracy on all and exact images; the payload keeps the confusion matrix and class names."""
    return RunRecord(command="eval", model=str(model) if model else None, model_sha256=file_sha256(model),
                     backend=backend, metrics=accuracy_metrics(result), evidence=evidence,
                     payload={**result, "data": result.get("data", data)}, label=Path(str(model)).name if model else None,
                     command_line=current_command_line())


def bench_runs(result: dict) -> list[RunRecord]:
    """`edgemap bench`: one run per benchmarked model, grouped (they were measured interleaved, in one run)."""
    group, runs = new_run_id(), []
    for r in result["results"]:
        metrics = [Metric(f"latency_{k}", r["latency"][k], "ms") for k in LATENCY_KEYS if k in r["latency"]]
        metrics.append(Metric("size_bytes", r["file_bytes"], "bytes"))
        metrics += [Metric(f"throughput_b{b}", t["images_per_s"], "images/s") for b, t in r["throughput"].items() if t]
        cold = r.get("cold_start") or {}
        metrics += [Metric(k, cold[k], unit) for k, unit in (("cold_start_s", "s"), ("peak_rss_mib", "MiB")) if cold.get(k)]
        evidence = {**result["evidence"], "runs": result["runs"], "warmup": result["warmup"], "threads": r["threads"],
                    "interleaved": result.get("interleaved", True)}
        runs.append(RunRecord(command="bench", model=r["model"], model_sha256=file_sha256(r["model"]), backend=r["backend"],
                              metrics=metrics, evidence=evidence, payload={**r, "fastest_p50": result.get("fastest_p50")},
                              label=r["label"], group_id=group, command_line=current_command_line()))
    return runs


def train_run(info: dict, out: str | Path) -> RunRecord:
    """`edgemap train`: test accuracy of the new checkpoint; the training config is its recipe."""
    training = info.get("training", {})
    test = info.get("metrics", {}).get("test", {})
    metrics = accuracy_metrics(test)
    metrics += [Metric("train_wall_s", training.get("wall_s_this_invocation"), "s"),
                Metric("train_images_per_s", training.get("images_per_s_median"), "images/s")]
    parent = (training.get("init_from") or {}).get("checkpoint")
    payload = {k: v for k, v in info.items() if k != "training"}
    payload["training"] = {k: v for k, v in training.items() if k != "history"}
    return RunRecord(command="train", model=str(out), model_sha256=file_sha256(out), parent_sha256=file_sha256(parent),
                     recipe=training.get("config"), backend="torch", metrics=[m for m in metrics if m.value is not None],
                     evidence=training.get("evidence"), payload=payload, label=info.get("architecture"),
                     command_line=training.get("command") or current_command_line())


def absolute(path: str | Path | None) -> str | None:
    """A model path as stored: absolute when the file exists, so a report written from another folder finds it."""
    if not path:
        return None
    return str(Path(path).resolve()) if Path(path).exists() else str(path)


def _basis(trial: dict, key: str) -> str:
    if key == "latency_ms":
        return "measured" if "measured" in str(trial.get("latency_basis", "")) else "estimated"
    return "estimated" if key in ("energy_mj", "ram_bytes") else "measured"


MAP_FIGURES = (("accuracy", "%"), ("accuracy_exact", "%"), ("accuracy_drop", "points"), ("latency_ms", "ms"),
               ("energy_mj", "mJ"), ("ram_bytes", "bytes"), ("size_bytes", "bytes"))


def trial_metrics(trial: dict, subject: str) -> list[Metric]:
    """A map candidate's figures, each labelled measured (accuracy, size, host latency) or estimated."""
    return [Metric(k, trial[k], unit, _basis(trial, k), subject) for k, unit in MAP_FIGURES if trial.get(k) is not None]


def map_run(summary: dict, source: str | None = None, model: str | None = None, recipe: dict | None = None) -> RunRecord:
    """`edgemap map`'s results.json: the chosen mapping's figures as the run's own, every candidate as a subject."""
    chosen = summary.get("chosen") or {}
    metrics = trial_metrics(chosen, "") if chosen else []
    metrics.append(Metric("baseline_accuracy", summary.get("baseline_accuracy"), "%"))
    for t in summary.get("trials", []):
        if t.get("error") is None:
            metrics += trial_metrics(t, t["key"])
    backend = (chosen.get("candidate") or {}).get("backend")
    model = model or ((recipe or {}).get("model") or {}).get("path")
    # the candidates' files by sha256: an `edgemap eval` of one of them is then known to be this model's child
    artifacts = {t["key"]: file_sha256(t["model_path"]) for t in summary.get("trials", []) if t.get("model_path")}
    payload = {**summary, "artifact_sha256": {k: v for k, v in artifacts.items() if v}}
    return RunRecord(command="map", model=absolute(model), model_sha256=file_sha256(model), device=summary.get("device"),
                     backend=backend, recipe=recipe, metrics=metrics, evidence=summary.get("evidence"), payload=payload,
                     label=chosen.get("key") or "no feasible mapping",
                     source=source,
                     command_line=current_command_line())


def compress_run(report: dict, source: str | Path | None = None, evidence: dict | None = None,
                 parent_sha256: str | None = None) -> RunRecord:
    """`edgemap compress ...`: a CompressionReport.to_dict() — before -> after as subjects 'before' / 'after'.
    The parent is `parent_sha256` when the caller knows the artifact's digest (a recipe step), else `source`'s."""
    metrics = []
    for i, subject in enumerate(("before", "after")):
        for name, unit in (("params", "count"), ("macs", "MACs"), ("file_bytes", "bytes")):
            pair = report.get(name) or [None, None]
            if pair[i] is not None:
                metrics.append(Metric(name, pair[i], unit, "measured", subject))
        metrics += accuracy_metrics((report.get("accuracy") or {}).get(subject) or {}, subject)
        lat = (report.get("latency") or {}).get(subject) or {}
        metrics += [Metric(f"latency_{k}", lat[k], "ms", "measured", subject) for k in LATENCY_KEYS if k in lat]
    if (report.get("latency") or {}).get("speedup") is not None:
        metrics.append(Metric("speedup", report["latency"]["speedup"], "x"))
    metrics.append(Metric("wall_s", report.get("wall_s"), "s"))
    metrics += own_figures(metrics)
    out = absolute(report.get("output"))
    return RunRecord(command="compress", model=out, model_sha256=file_sha256(out),
                     parent_sha256=parent_sha256 or file_sha256(source), recipe=report.get("config"),
                     label=report.get("technique"), payload=report, metrics=[m for m in metrics if m.value is not None],
                     evidence=evidence, command_line=current_command_line())


OWN_FIGURES = ("top1", "top1_exact", "latency_p50_ms", "file_bytes")


def own_figures(metrics: list[Metric]) -> list[Metric]:
    """The output model's headline figures ('after') as the run's own, and the top-1 drop, so that `runs list`
    shows and sorts compress runs like the others."""
    by = {(m.subject, m.name): m for m in metrics}
    out = [Metric(n, by["after", n].value, by["after", n].unit, by["after", n].basis) for n in OWN_FIGURES if ("after", n) in by]
    for name in ("top1", "top1_exact"):
        if ("before", name) in by and ("after", name) in by:
            out.append(Metric(f"drop_points{name[4:]}", by["before", name].value - by["after", name].value, "points"))
    return out


def convert_run(result: dict, source_file: str | Path | None = None, evidence: dict | None = None) -> RunRecord:
    """`edgemap convert`: a ConversionResult.to_dict() — file size, parity against the source, conversion time."""
    parity = result.get("parity") or {}
    metrics = [Metric("size_bytes", result.get("size_bytes"), "bytes"), Metric("convert_s", result.get("seconds"), "s")]
    metrics += [Metric(k, parity[k], unit) for k, unit in (("max_abs_diff", ""), ("top1_agreement", "share"),
                                                          ("candidate_top1", "%"), ("reference_top1", "%"))
                if isinstance(parity.get(k), (int, float))]
    backend = {"onnx": "onnxruntime", "openvino": "openvino", "litert": "litert"}.get(result.get("format"), result.get("format"))
    return RunRecord(command="convert", model=absolute(result.get("path")), model_sha256=file_sha256(result.get("path")),
                     parent_sha256=file_sha256(source_file), backend=backend, label=Path(result.get("path") or "-").name,
                     recipe={"format": result.get("format"), "precision": result.get("precision")}, payload=result,
                     metrics=[m for m in metrics if m.value is not None], evidence=evidence,
                     command_line=current_command_line())


def _basis_of(figure_basis: str) -> str:
    return "measured" if str(figure_basis).startswith("measured") else "estimated"


ESTIMATE_FIGURES = (("latency_s", "latency_ms", 1000.0, "ms"), ("peak_ram_bytes", "ram_bytes", 1.0, "bytes"),
                    ("weights_bytes", "weights_bytes", 1.0, "bytes"), ("activations_bytes", "activations_bytes", 1.0, "bytes"),
                    ("flash_bytes", "flash_bytes", 1.0, "bytes"), ("energy_j", "energy_mj", 1000.0, "mJ"),
                    ("energy_ops_j", "energy_ops_mj", 1000.0, "mJ"))


def estimate_run(est: dict, model: str | Path | None, measured: dict | None = None,
                 evidence: dict | None = None) -> RunRecord:
    """`edgemap estimate`: an Estimate.to_dict() on a device profile; each figure keeps its own basis (estimated,
    or measured where the profile's figure was), and `--measure`'s host latency is added as measured."""
    metrics = [Metric(name, est[key]["value"] * scale, unit, _basis_of(est[key].get("basis")))
               for key, name, scale, unit in ESTIMATE_FIGURES if isinstance(est.get(key), dict)]
    metrics += [Metric("macs", est.get("macs"), "MACs", "measured"), Metric("fits", float(bool(est.get("fits"))), "bool", "estimated")]
    if measured:
        metrics += [Metric(f"measured_latency_{k}", measured[k], "ms", "measured") for k in LATENCY_KEYS if k in measured]
    return RunRecord(command="estimate", model=absolute(model), model_sha256=file_sha256(model),
                     device=est.get("device"), backend=None, label=Path(str(model)).name if model else None,
                     recipe={k: est.get(k) for k in ("unit", "precision", "threads")},
                     metrics=[m for m in metrics if m.value is not None], evidence=evidence,
                     payload={**est, **({"measured_latency": measured} if measured else {})},
                     command_line=current_command_line())


def replay_run(result: dict, recipe: dict, recipe_file: str | Path) -> RunRecord:
    """`edgemap run RECIPE`: the rebuilt model's accuracy (measured) beside what the recipe recorded."""
    artifacts = result.get("artifacts") or []
    parent = artifacts[-1].get("parent") if artifacts else None
    metrics = [Metric("accuracy", result.get("accuracy"), "%"), Metric("accuracy_exact", result.get("accuracy_exact"), "%"),
               Metric("selftest_top1_agreement", (result.get("selftest") or {}).get("top1_agreement"), "share")]
    backend = (recipe.get("runtime") or {}).get("backend")
    return RunRecord(command="run", model=absolute(result.get("model")), model_sha256=result.get("sha256") or file_sha256(result.get("model")),
                     parent_sha256=parent, recipe=recipe, device=recipe.get("device"), backend=backend,
                     metrics=[m for m in metrics if m.value is not None], payload={**result, "recipe_file": str(recipe_file)},
                     label=recipe.get("chosen") or Path(str(recipe_file)).name, command_line=current_command_line())


def demo_runs(figures: dict) -> list[RunRecord]:
    """`edgemap demo`: the shipped checkpoint (torch) and its ONNX export (onnxruntime, parent: the checkpoint),
    each with its sample accuracy and batch-1 latency, measured interleaved in one run (one group)."""
    group, runs = new_run_id(), []
    ckpt_sha = file_sha256(figures.get("checkpoint"))
    for backend, model, size_key in (("torch", figures.get("checkpoint"), "safetensors"),
                                     ("onnxruntime", figures.get("onnx"), "onnx")):
        lat = (figures.get("latency_batch1") or {}).get(backend) or {}
        metrics = [Metric("top1_sample", (figures.get("sample_top1") or {}).get(backend), "%"),
                   Metric("size_bytes", (figures.get("size_bytes") or {}).get(size_key), "bytes")]
        metrics += [Metric(f"latency_{k}", lat[k], "ms") for k in LATENCY_KEYS if k in lat]
        if backend == "onnxruntime":
            metrics += [Metric("parity_max_abs_diff", figures["parity"]["max_abs_diff"]),
                        Metric("parity_top1_agreement", figures["parity"]["top1_agreement_pct"], "%")]
        runs.append(RunRecord(command="demo", model=absolute(model), model_sha256=file_sha256(model),
                              parent_sha256=ckpt_sha if backend == "onnxruntime" else None, backend=backend, device="host",
                              metrics=[m for m in metrics if m.value is not None], evidence=figures.get("evidence"),
                              payload=figures, label=f"{figures.get('model')} {backend}", group_id=group,
                              command_line=current_command_line()))
    return runs
