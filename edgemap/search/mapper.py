"""`edgemap map`: find the mapping of a model onto a device that meets the constraints and is best
on the chosen objective, then write its recipe, bundle and report."""

from __future__ import annotations

import time

from rich.console import Console

from edgemap.search.options import MapOptions, build_space, candidate_from, installed_backends  # noqa: F401 - re-exported


def run_map(opts: MapOptions) -> dict:
    """The whole mapping: prepare, search, choose, verify, write. Returns the summary written to results.json."""
    from edgemap.search import outputs, workflow

    console = Console(stderr=True)
    t0 = time.perf_counter()
    job = workflow.prepare(opts, console)
    results = workflow.search(opts, job, console)
    summary = workflow.choose(opts, job, results)
    if summary["chosen"] is not None:
        extra, peers = {}, None
        if opts.compare_peers:  # built before the timing, so that they are timed in the same run
            from edgemap.search.peers_step import build_map_peers

            extra, peers = build_map_peers(job, opts.calib_samples, opts.out_dir)
        workflow.measure(opts, job, summary, extra)
        if peers is not None:
            from edgemap.search.peers_step import summarise_peers

            summary["peers"] = summarise_peers(peers, summary, opts.constraints.max_accuracy_drop)
        summary["bundle"] = str(outputs.write_bundle(opts, job, summary))
    summary["recipe"] = str(outputs.write_recipe(opts, job, summary))
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    summary["report"] = str(outputs.write_report(opts, job, summary))
    outputs.print_summary(summary, job, Console())
    return summary
