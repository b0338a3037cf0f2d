"""Markdown tables of benchmarks/split_bench.py's result record (kept apart from the measuring script)."""

from __future__ import annotations


def _evidence(ev: dict) -> str:
    return (f"{ev['cpu']}, flags {ev['cpu_flags']}, load average {ev.get('load_average')} at the end, "
            f"ORT {ev.get('versions', {}).get('onnxruntime', '?')}")


def _load_line(b: dict | None) -> list[str]:
    if not b:
        return []
    pct = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
    return [f"- load (1-minute average, before/after each case): median {b['median_load']:.1f}; choice = measured "
            f"fastest in {pct(b['quiet']['choice_is_measured_fastest'])} of the {b['quiet']['cases']} cases below "
            f"{b['quiet_below']:g} and {pct(b['busy']['choice_is_measured_fastest'])} of the {b['busy']['cases']} others"]


def _per_model(pm: dict | None) -> list[str]:
    if not pm:
        return []
    load = lambda v: "" if v is None else f"{v:.1f}"  # noqa: E731
    return ["| model | cases | choice = fastest | fastest or tie | within 10 % | > 5 % slower than the better end | "
            "mean error (FLOPs baseline) | median load |", "|---|---|---|---|---|---|---|---|"] + [
        f"| {m} | {v['cases']} | {v['choice_is_measured_fastest']:.1%} | {v['choice_is_fastest_or_tie']:.1%} | "
        f"{v['choice_within_10pct']:.1%} | {v['slower_than_best_end_by_5pct']} | {v['prediction_mean_abs_error']:.1%} "
        f"({v['flops_baseline_mean_abs_error']:.1%}) | {load(v['median_load'])} |" for m, v in pm.items()] + [""]


def _contenders(st: dict) -> str:
    if "extra" not in st:  # records from before the contenders and the idle gap
        return "rounds in a fixed order, "
    return (f"the contenders (within {st['contend']:g}x the fastest median) {st['extra']} more; every request after "
            f"{st['gap_s'] * 1e3:g} ms idle, rounds in random order; ")


def markdown(rec: dict) -> str:
    """The tables of split_bench's JSON (one run's or several merged by split_bench_summary), for people."""
    s, st = rec["summary"], rec["settings"]
    runs = rec.get("runs") or [{"command": rec["command"], "date": rec["date"], "evidence": rec["evidence"]}]
    every = s["every_option_errors"]
    lines = [f"# split_bench ({rec['date']})", "", f"`{rec['command']}`", "", "Runs (other helpers share the 2 cores: "
             "timings are noisy):", ""] + [f"- `{r['command']}` ({r['date']}): {_evidence(r['evidence'])}; "
                                    f"{_contenders(r.get('settings', st)).rstrip(', ')}" for r in runs] + [
             "", f"ORT threads {st['threads']} per side. Every feasible option of every case run for real: {st['screen']} "
             f"screening request(s) each, then the finalists (screened within {st['final_within']:g}x the fastest, the "
             f"planner's choice, the fastest screened device / input / split option) {st['final']} more, "
             f"{_contenders(st)}median of all. "
             f"HTTP overhead measured {rec['overhead_ms']} ms. Device emulated as this host slowed down (see the "
             f"script's docstring).", "", "## Planner vs measured", "",
             f"- cases: {s['cases']}; options run: {s['options_run']} ({s['requests']} timed requests); planner's choice is "
             f"the measured fastest in {s['choice_is_measured_fastest']:.1%}, within 10 % of it in "
             f"{s['choice_within_10pct']:.1%}; fastest or a tie (the choice's median within the fastest's upper quartile) "
             f"in {s['choice_is_fastest_or_tie']:.1%}",
             f"- ties: {s['ties'] or 'none'}", f"- misses (not a tie): {s['misses'] or 'none'}",
             *_load_line(s.get("by_load")),
             f"- choice slower than the better of all-on-device / all-on-server by > 5 %: "
             f"{s['cases_choice_slower_than_best_end_by_5pct'] or 'never'}",
             f"- predicted vs measured latency over {s['measured_options']} finalists: mean |error| "
             f"{s['prediction_mean_abs_error']:.1%} (median {s['prediction_median_abs_error']:.1%}); FLOPs-proportional "
             f"baseline {s['flops_baseline_mean_abs_error']:.1%}; over all {every['options']} options run (most timed "
             f"once): {every['mean_abs_error']:.1%} (median {every['median_abs_error']:.1%}), baseline "
             f"{every['flops_baseline_mean_abs_error']:.1%}", "",
             *_per_model(s.get("per_model")),
             "| model | Mbps | RTT ms | plan | measured fastest | plan ms | fastest ms | options run |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rec["cases"]:
        lines.append(f"| {r['model']} | {r['bandwidth_mbps']:g} | {r['rtt_ms']:g} | {r['choice']} | {r['fastest']} | "
                     f"{r['choice_ms'] or float('nan'):.2f} | {r['fastest_ms']:.2f} | {len(r['measured'])} |")
    lines += ["", "## Where the time goes: measured - predicted ms per encoding (finalists, mean)", "",
              "Parts: the client's encode (vs the profile's encode median), the server's time (decode + compute, vs "
              "the profile's decode + tail median), the network (the rest, vs overhead + RTT + bytes / bandwidth).", "",
              "| encoding | options | total | encode | server | network |", "|---|---|---|---|---|---|"]
    for kind, v in rec.get("residual_ms", {}).items():
        lines.append(f"| {kind} | {v['n']} | {v['total']:+.3f} | " + " | ".join(
            "" if v[p] is None else f"{v[p]:+.3f}" for p in ("encode", "server", "network")) + " |")
    for name, rows in rec["bytes"].items():
        lines += ["", f"## Activations of {name}: bytes from the HTTP request bodies (and on the wire, framing included)", "",
                  "| point | op | FP32 B | INT8 B | FP32/INT8 | INT8+zstd B | FP32/(INT8+zstd) | wire up B (INT8) | INT8 top-1 drop pts "
                  "| INT8 top-1 agreement |", "|---|---|---|---|---|---|---|---|---|---|"]
        for b in rows:
            lines.append(f"| {b['point']} | {b['op']}{' (>=0)' if b['nonnegative'] else ''} | {b['fp32']['body_bytes']:.0f} | "
                         f"{b['int8']['body_bytes']:.0f} | {b['fp32_over_int8']:.2f} | {b['int8-zstd']['body_bytes']:.0f} | "
                         f"{b['fp32_over_int8_zstd']:.2f} | {b['int8']['wire_bytes_up']:.0f} | {b['int8_drop_points']:+.2f} | "
                         f"{b['int8']['agreement']:.2%} |")
    lines += ["", "## Best split vs best input encoding (both measured, same accuracy budget)", "",
              "| model | Mbps | RTT | best split | ms | best input | ms | split wins |", "|---|---|---|---|---|---|---|---|"]
    for r in rec["split_vs_input"]:
        lines.append(f"| {r['model']} | {r['bandwidth_mbps']} | {r['rtt_ms']} | {r['split']} | {r['split_ms']:.2f} | "
                     f"{r['input']} | {r['input_ms']:.2f} | {'yes' if r['split_wins'] else 'no'} |")
    for key in ("adaptivity", "adaptivity_jitter"):
        if rec.get(key):
            lines += _adaptivity(rec[key])
    return "\n".join(lines) + "\n"


def _adaptivity(a: dict) -> list[str]:
    unit = "packets" if "lost_packets" in a else "chunks"  # records before per-packet loss lost 4 KB chunks
    link = (f", jitter +-{a['jitter_ms']:g} ms per chunk each way, {a['loss']:.0%} of {unit} lost and resent after 200 ms "
            f"(lost: {a.get('lost_packets', a.get('lost_chunks'))})" if a.get("jitter_ms") or a.get("loss") else "")
    lines = ["", f"## Adaptivity: 100 -> 5 -> 100 Mbps at RTT 5 ms{link}", "",
             f"- expected choices {a['expected_choice']}; requests until the new choice held: {a['requests_to_switch']}; "
             f"failed requests: {a['failures']}", "", "| request | link Mbps | choice | ran | ms | estimated Mbps |",
             "|---|---|---|---|---|---|"]
    for e in a["log"]:
        est = (e.get("estimate") or {}).get("bandwidth_mbps")
        lines.append(f"| {e['i']} | {e['link_mbps']} | {e.get('choice', e.get('error'))} | {e.get('ran', '')} | "
                     f"{e.get('total_ms', float('nan'))} | {est if est is None else round(est, 1)} |")
    return lines
