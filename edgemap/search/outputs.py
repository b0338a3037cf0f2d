"""What `edgemap map` leaves behind: recipe.yaml, the bundle, results.json, report.md + Pareto plot, and a table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from edgemap.core.atomic import write_json, write_text
from edgemap.search.options import MapOptions
from edgemap.search.records import SearchSummary


def recipe_dict(opts: MapOptions, job, summary: SearchSummary) -> dict:  # noqa: ANN001 - Job
    """The chosen mapping as the recipe the search built and measured (`edgemap run recipe.yaml` rebuilds it):
    its model, data, preprocessing, every pass with every option, its runtime, and what was measured."""
    from edgemap.search.compile import candidate_recipe

    m = summary.chosen or (summary.nearest[0] if summary.nearest else None)
    recipe = {**job.ctx.recipe, "passes": [], "runtime": {}}
    if m is not None:
        recipe = candidate_recipe(job.ctx.recipe, m.candidate, job.ctx.settings)
    cons = {k: v for k, v in summary.constraints.to_dict().items() if v is not None}
    return {**recipe, "device": opts.device, "constraints": cons, "objective": opts.objective,
            "chosen": m.key if m else None,
            "expected": {"accuracy": m.accuracy, "accuracy_exact": m.accuracy_exact, "latency_ms": m.latency_ms,
                         "sha256": m.sha256} if m else None,
            "search": {"seed": opts.seed, "sampler": opts.sampler, "trials": opts.trials}}


def write_recipe(opts: MapOptions, job, summary: SearchSummary) -> Path:  # noqa: ANN001
    """recipe.yaml in the output folder."""
    path = Path(opts.out_dir) / "recipe.yaml"
    write_text(path, "# written by `edgemap map`; re-run with `edgemap run " + str(path) + "`\n"
               + yaml.safe_dump(recipe_dict(opts, job, summary), sort_keys=False))
    return path


def write_bundle(opts: MapOptions, job, summary: SearchSummary) -> Path:  # noqa: ANN001
    """The chosen model packed with its preprocessing and a self-test the device must reproduce."""
    from edgemap.deploy.bundle import pack
    from edgemap.runtime.registry import load_session

    m = summary.chosen
    c = m.candidate
    images = np.load(Path(job.ctx.work_dir) / "selftest_images.npy")
    with load_session(c.backend, m.model_path, c.threads) as s:
        logits = np.concatenate([s.run(job.preprocess.apply(images[i:i + 1])) for i in range(len(images))])
    extra = {"mapping": {"key": m.key, **c.to_dict()}, "device": opts.device,
             "metrics": {k: getattr(m, k) for k in ("accuracy", "accuracy_exact", "accuracy_drop", "latency_ms",
                                                    "latency_basis", "energy_mj", "ram_bytes", "size_bytes")}}
    recipe = yaml.safe_dump(recipe_dict(opts, job, summary), sort_keys=False)
    return pack(m.model_path, c.backend, Path(opts.out_dir) / "bundle", job.preprocess.to_dict(), list(job.class_names),
                images, logits, extra, recipe)


def write_report(opts: MapOptions, job, summary: SearchSummary) -> Path:  # noqa: ANN001
    """results.json (everything, with evidence), pareto.png and report.md."""
    out = Path(opts.out_dir)
    write_json(out / "results.json", summary.to_dict())
    plot = _plot(summary, out / "pareto.png")
    lines = [f"# edgemap map: {job.model.name} on {opts.device}", "", f"Objective: {opts.objective}; constraints: "
             f"{summary.constraints.to_dict()}; data: {summary.data}.", "", f"Baseline (FP32, ONNX Runtime): "
             f"{summary.baseline_accuracy:.2f}% top-1.", ""]
    lines += ["| candidate | top-1 % | drop | latency ms | basis | energy mJ | size KB | front | fits |", "|---|---|---|---|---|---|---|---|---|"]
    for m in sorted((t for t in summary.trials if t.ok), key=lambda t: t.latency_ms):
        lines.append(f"| {m.key} | {m.accuracy:.2f} | {m.accuracy_drop:.2f} | {m.latency_ms:.4f} | {m.latency_basis} | "
                     f"{m.energy_mj:.4f} | {m.size_bytes / 1e3:.0f} | {'yes' if m.key in summary.front else ''} | "
                     f"{'yes' if not m.violations else '; '.join(m.violations)} |")
    if plot:
        lines += ["", f"![Pareto front]({plot.name})"]
    if summary.choice.get("line"):
        lines += ["", f"Choice: {summary.choice['line']}."]
    if summary.comparison:
        from edgemap.search.robust import summary_lines

        lines += ["", "Batch-1 latency on this host, one run, every model alone in a fresh process:", ""]
        lines += [f"- {line}" for line in summary_lines(summary.to_dict())]
        lines += [f"- {k}: median {v['p50_ms']:.4f} ms (rounds {v['spread_ms'][0]:.4f}-{v['spread_ms'][1]:.4f}), {v['threads']} "
                  f"thread(s), {v['speedup_vs_chosen']:.2f}x the chosen mapping's time ({v['verdict']})"
                  for k, v in summary.comparison.items()]
    write_text(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md"


def _plot(summary: SearchSummary, path: Path) -> Path | None:
    """Accuracy vs objective, front highlighted, chosen starred (matplotlib, no display)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    key = summary.objective_key
    ok = [t for t in summary.trials if t.ok]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([t.value(key) for t in ok], [t.accuracy for t in ok], c="lightgray", label="tried")
    front = [t for t in ok if t.key in summary.front]
    ax.scatter([t.value(key) for t in front], [t.accuracy for t in front], c="tab:blue", label="Pareto front")
    if summary.chosen:
        ax.scatter([summary.chosen.value(key)], [summary.chosen.accuracy], marker="*", s=200, c="tab:red", label="chosen")
    ax.set_xlabel(key)
    ax.set_ylabel("top-1 %")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def print_summary(summary: SearchSummary, console: Console) -> None:
    """The front as a table, then the chosen mapping and where its files are (or the nearest misses)."""
    key = summary.objective_key
    t = Table(title=f"Pareto front ({len(summary.front)} of {len(summary.trials)} tried) on {summary.device}")
    for col in ("mapping", "top-1", "drop", key, "size", "fits"):
        t.add_column(col, justify="left" if col in ("mapping", "fits") else "right")
    for m in summary.trials:
        if m.key in summary.front:
            t.add_row(m.key, f"{m.accuracy:.2f}%", f"{m.accuracy_drop:.2f}", f"{m.value(key):.4g}", f"{m.size_bytes / 1e3:.0f} KB",
                      "yes" if not m.violations else "; ".join(m.violations))
    console.print(t)
    c = summary.chosen
    if c is None:
        console.print("[bold red]no mapping meets the constraints[/]; nearest:")
        for m in summary.nearest:
            console.print(f"  {m.key}: " + "; ".join(m.violations))
    else:
        console.print(f"[bold green]chosen:[/] {c.key}  top-1 {c.accuracy:.2f}% (drop {c.accuracy_drop:.2f}), "
                      f"{key} {c.value(key):.4g} ({c.latency_basis if key == 'latency_ms' else 'estimated'})")
        if summary.choice.get("line"):
            console.print(f"  {summary.choice['line']}", highlight=False)
        from edgemap.search.robust import summary_lines

        for line in summary_lines(summary.to_dict()):
            console.print(f"  {line}", highlight=False)
        console.print(f"  bundle: {summary.bundle}")
    console.print(f"  recipe: {summary.recipe}\n  report: {summary.report}  ({summary.wall_s} s)")
