"""`edgemap map` (search the best mapping for a device) and `edgemap run` (replay a recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgemap.commands.options import CLASSES_OPTION, LABELS_OPTION, MODEL_HELP, PREPROCESS_OPTION, WEIGHTS_OPTION


def _floats(text: str, what: str) -> tuple[float, ...]:
    from edgemap.errors import EdgemapError

    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise EdgemapError(f"{what} must be comma-separated numbers, got {text!r}") from None


def register(app: typer.Typer) -> None:
    """Add `map` and `run` to the CLI."""

    @app.command("map")
    def map_cmd(
        model: Optional[str] = typer.Option(None, help=MODEL_HELP + "; default: the shipped model"),
        weights: Optional[Path] = WEIGHTS_OPTION,
        device: str = typer.Option("host", help="device profile name or YAML file (see `edgemap devices`)"),
        max_accuracy_drop: float = typer.Option(1.0, help="points of top-1 the mapping may lose"),
        max_latency_ms: Optional[float] = typer.Option(None, help="latency limit on the device"),
        max_ram_mb: Optional[float] = typer.Option(None, help="peak RAM limit on the device"),
        objective: str = typer.Option("latency", help="latency | energy | size"),
        trials: int = typer.Option(12, help="distinct candidates to evaluate"),
        sampler: str = typer.Option("tpe", help="tpe | nsga2"),
        seed: int = typer.Option(0),
        executor: str = typer.Option("local", help="local | ray"),
        ray_address: Optional[str] = typer.Option(None, help="existing Ray cluster (default: start a local Ray)"),
        workers: int = typer.Option(2, help="trials asked per batch (any executor, so a seed gives the same search); Ray CPUs when starting a local Ray"),
        data: Optional[Path] = typer.Option(None, help="evaluation data (default: the shipped 1,000-image sample)"),
        train_data: Optional[Path] = typer.Option(None, help="training data: enables pruning + fine-tuning, calibrates"),
        preprocess: Optional[str] = PREPROCESS_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        labels: Optional[Path] = LABELS_OPTION,
        prune_ratios: str = typer.Option("0", help="comma-separated channel-pruning ratios to try, e.g. 0,0.25,0.5"),
        finetune_steps: Optional[int] = typer.Option(300, help="fine-tuning budget after pruning, in optimizer steps "
                                                              "(stops early once within half the accuracy bound)"),
        finetune_minutes: Optional[float] = typer.Option(None, help="fine-tuning budget in minutes per ratio "
                                                                   "(with --finetune-steps: whichever runs out first)"),
        finetune_epochs: Optional[int] = typer.Option(None, help="fixed fine-tuning epochs instead of the budget "
                                                                "(edgemap checkpoints: 2 by default)"),
        finetune_precision: str = typer.Option("fp32", help="fine-tuning precision: fp32, or bf16 (CPU autocast; faster "
                                                            "only on some CPUs)"),
        backends: str = typer.Option("onnxruntime,openvino,litert",
                                     help="comma-separated backends to try (skipped where not installed or not run by the device)"),
        precisions: str = typer.Option("fp32,fp16,int8", help="comma-separated precisions to try"),
        calibrations: str = typer.Option("minmax,entropy,percentile", help="comma-separated INT8 calibration methods to try "
                                                                          "(each backend offers those it declares)"),
        threads: str = typer.Option("1,2", help="comma-separated thread counts to try"),
        latency_runs: int = typer.Option(100, help="timed batch-1 runs per candidate"),
        compare_peers: bool = typer.Option(False, "--compare-peers", help="also build the INT8 a user would otherwise make "
                                           "(ONNX Runtime with Olive's defaults, NNCF on ONNX Runtime and on OpenVINO), "
                                           "scored and timed in the same run"),
        timing_rounds: int = typer.Option(3, help="alternating rounds timing the finalists and references, each alone "
                                                  "in a fresh process (more: narrower spreads, longer wall time)"),
        out: Path = typer.Option(Path("out/map"), help="output folder (study, artifacts, recipe, bundle, report)"),
    ) -> None:
        """Search compressions x precisions x backends x threads for the best mapping onto a device."""
        from edgemap.data.classes import class_names_option
        from edgemap.search.mapper import MapOptions
        from edgemap.search.strategy import Constraints

        opts = MapOptions(
            model=model, weights=weights, device=device, objective=objective, trials=trials, sampler=sampler, seed=seed, executor=executor,
            constraints=Constraints(max_accuracy_drop, max_latency_ms, max_ram_mb), ray_address=ray_address,
            workers=workers, out_dir=out, eval_data=data, train_data=train_data, preprocess=preprocess,
            class_names=class_names_option(classes, labels), prune_ratios=_floats(prune_ratios, "--prune-ratios"), finetune_epochs=finetune_epochs,
            finetune_steps=finetune_steps, finetune_minutes=finetune_minutes,
            finetune_precision=finetune_precision,
            backends=tuple(b.strip() for b in backends.split(",") if b.strip()),
            precisions=tuple(p.strip() for p in precisions.split(",") if p.strip()),
            calibrations=tuple(c.strip() for c in calibrations.split(",") if c.strip()),
            threads=tuple(int(v) for v in _floats(threads, "--threads")), latency_runs=latency_runs,
            timing_rounds=timing_rounds, compare_peers=compare_peers)
        map_and_report(opts)

    @app.command("run")
    def run_cmd(recipe: Path, out: Path = typer.Option(Path("out/run"), help="output folder (pass outputs, bundle)"),
                cache: Optional[Path] = typer.Option(None, help="artifact cache to reuse (e.g. the map's out/map/cache); "
                                                               "default: a fresh OUT/cache, so every pass runs again")) -> None:
        """Rebuild a recipe (as written by `edgemap map`): its passes, evaluation, bundle; compared with what it recorded."""
        from rich.console import Console

        from edgemap.search.replay import run_recipe_file

        r = run_recipe_file(recipe, out, cache)
        _record_replay(r, recipe)
        exact = f", {r['accuracy_exact']:.2f}% on exact images" if r["accuracy_exact"] is not None else ""
        lines = [f"{recipe}: top-1 {r['accuracy']:.2f}%{exact} ({r['data']})"]
        if r["expected_accuracy"] is not None:
            lines.append(f"  recorded top-1 {r['expected_accuracy']:.2f}% (difference {r['accuracy'] - r['expected_accuracy']:+.2f})")
        if r["same_file"] is not None:
            verdict = "same sha256 as the recorded file" if r["same_file"] else (
                "a different file from the recorded one" + ("" if r["deterministic"] else " (a pass is not deterministic: "
                                                            "fine-tuning; compare the accuracy)"))
            lines.append(f"  model: {r['model']} ({verdict})")
        else:
            lines.append(f"  model: {r['model']}")
        lines.append(f"  bundle: {r['bundle']} (self-test top-1 agreement {r['selftest']['top1_agreement']:.3f})")
        Console().print("\n".join(lines))


def map_and_report(opts):  # noqa: ANN001, ANN201 - MapOptions -> SearchSummary
    """`edgemap map` (and `edgemap demo`'s map): the search, then its run recorded in the results store and the
    self-contained OUT/report.html written (a store that cannot take the run is a warning; the report is written)."""
    from dataclasses import replace

    from edgemap.report.map_report import record_and_report_map
    from edgemap.search.mapper import run_map

    summary = run_map(opts)
    summary = replace(summary, report_html=str(record_and_report_map(summary.to_dict(), opts.out_dir)))
    typer.echo(f"  html report: {summary.report_html}")
    return summary


def _record_replay(result: dict, recipe: Path) -> None:
    """`edgemap run` measures the rebuilt model: record it (parent and recipe from the recipe file)."""
    import yaml

    from edgemap.results.builders import replay_run
    from edgemap.results.record import record_run

    from edgemap.core.evidence import machine_evidence

    run = replay_run(result, yaml.safe_load(recipe.read_text()) or {}, recipe)
    run.evidence = machine_evidence()
    record_run(run)
