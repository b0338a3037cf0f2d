"""`edgemap map`: find the mapping of a model onto a device that meets the constraints and is best
on the chosen objective, then write its recipe, bundle and report."""

from __future__ import annotations

import time
from dataclasses import replace

from rich.console import Console

from edgemap.search.options import MapOptions, build_space, installed_backends  # noqa: F401 - re-exported
from edgemap.search.records import SearchSummary


def run_map(opts: MapOptions) -> SearchSummary:
    """The whole mapping: prepare, search, choose, verify, write. Returns the summary written to results.json."""
    from edgemap.core.evidence import machine_evidence
    from edgemap.search import outputs, workflow

    console = Console(stderr=True)
    t0 = time.perf_counter()
    job = workflow.prepare(opts, console)
    results = workflow.search(opts, job, console)
    summary = workflow.choose(opts, job, results)
    if summary.chosen is not None:
        extra, peers = {}, None
        if opts.compare_peers:  # built before the timing, so that they are timed in the same run
            from edgemap.search.peers_step import build_map_peers

            extra, peers = build_map_peers(job, opts.calib_samples, opts.out_dir)
        summary = workflow.measure(opts, job, summary, extra)
        if peers is not None:
            from edgemap.search.peers_step import summarise_peers

            summary = replace(summary, peers=summarise_peers(peers, summary.to_dict(), opts.constraints.max_accuracy_drop))
        summary = replace(summary, bundle=str(outputs.write_bundle(opts, job, summary)))
    summary = replace(summary, recipe=str(outputs.write_recipe(opts, job, summary)), wall_s=round(time.perf_counter() - t0, 1),
                      evidence=machine_evidence(), class_names=job.class_names)  # the report's confusion matrix names them
    summary = replace(summary, report=str(outputs.write_report(opts, job, summary)))
    outputs.print_summary(summary, Console())
    return summary
