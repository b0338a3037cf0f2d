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
    return RunRecord(command="map", model=model, model_sha256=file_sha256(model), device=summary.get("device"),
                     backend=backend, recipe=recipe, metrics=metrics, evidence=summary.get("evidence"), payload=payload,
                     label=chosen.get("key") or "no feasible mapping",
                     source=source,
                     command_line=current_command_line())


def compress_run(report: dict, source: str | Path | None = None) -> RunRecord:
    """`edgemap compress ...`: a CompressionReport.to_dict() — before -> after as subjects 'before' / 'after'."""
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
    out = report.get("output")
    return RunRecord(command="compress", model=out, model_sha256=file_sha256(out), parent_sha256=file_sha256(source),
                     recipe=report.get("config"), label=report.get("technique"), payload=report, metrics=metrics,
                     command_line=current_command_line())


def convert_run(result: dict, source_file: str | Path | None = None, evidence: dict | None = None) -> RunRecord:
    """`edgemap convert`: a ConversionResult.to_dict() — file size, parity against the source, conversion time."""
    parity = result.get("parity") or {}
    metrics = [Metric("size_bytes", result.get("size_bytes"), "bytes"), Metric("convert_s", result.get("seconds"), "s")]
    metrics += [Metric(k, parity[k], unit) for k, unit in (("max_abs_diff", ""), ("top1_agreement", "share"),
                                                          ("candidate_top1", "%"), ("reference_top1", "%"))
                if isinstance(parity.get(k), (int, float))]
    backend = {"onnx": "onnxruntime", "openvino": "openvino", "litert": "litert"}.get(result.get("format"), result.get("format"))
    return RunRecord(command="convert", model=result.get("path"), model_sha256=file_sha256(result.get("path")),
                     parent_sha256=file_sha256(source_file), backend=backend, label=Path(result.get("path") or "-").name,
                     recipe={"format": result.get("format"), "precision": result.get("precision")}, payload=result,
                     metrics=[m for m in metrics if m.value is not None], evidence=evidence,
                     command_line=current_command_line())
