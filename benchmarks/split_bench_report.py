"""Markdown tables of benchmarks/split_bench.py's result record (kept apart from the measuring script)."""

from __future__ import annotations


def markdown(rec: dict, threads: int, requests: int) -> str:
    """The tables of split_bench's JSON, for people (threads, requests: the run's ORT threads per side and timed
    requests per option)."""
    s = rec["summary"]
    lines = [f"# split_bench ({rec['date']})", "", f"`{rec['command']}`", "",
             f"Evidence: {rec['evidence']['cpu']}, flags {rec['evidence']['cpu_flags']}, load average "
             f"{rec['evidence'].get('load_average')} at the end (other helpers share the 2 cores: timings are noisy), "
             f"ORT threads {threads} per side, {requests} timed requests per option (median). HTTP overhead measured "
             f"{rec['overhead_ms']} ms. Device emulated as this host slowed down (see the script's docstring).", "",
             "## Planner vs measured", "",
             f"- cases: {s['cases']}; planner's choice is the measured fastest in {s['choice_is_measured_fastest']:.1%}, "
             f"within 10 % of it in {s['choice_within_10pct']:.1%}; fastest or a tie (the choice's median within the "
             f"fastest's upper quartile) in {s['choice_is_fastest_or_tie']:.1%}; ties: {s['ties'] or 'none'}",
             f"- choice slower than the better of all-on-device / all-on-server by > 5 %: "
             f"{s['cases_choice_slower_than_best_end_by_5pct'] or 'never'}",
             f"- predicted vs measured latency over {s['measured_options']} measured options: mean |error| "
             f"{s['prediction_mean_abs_error']:.1%} (median {s['prediction_median_abs_error']:.1%}); FLOPs-proportional "
             f"baseline {s['flops_baseline_mean_abs_error']:.1%}", "",
             "| model | Mbps | RTT ms | plan | measured fastest | plan ms | fastest ms |", "|---|---|---|---|---|---|---|"]
    for r in rec["cases"]:
        lines.append(f"| {r['model']} | {r['bandwidth_mbps']} | {r['rtt_ms']} | {r['choice']} | {r['fastest']} | "
                     f"{r['choice_ms'] or float('nan'):.2f} | {r['fastest_ms']:.2f} |")
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
    a = rec.get("adaptivity")
    if a:
        lines += ["", "## Adaptivity: 100 -> 5 -> 100 Mbps at RTT 5 ms", "",
                  f"- expected choices {a['expected_choice']}; requests until the new choice held: {a['requests_to_switch']}; "
                  f"failed requests: {a['failures']}", "", "| request | link Mbps | choice | ran | ms | estimated Mbps |",
                  "|---|---|---|---|---|---|"]
        for e in a["log"]:
            est = (e.get("estimate") or {}).get("bandwidth_mbps")
            lines.append(f"| {e['i']} | {e['link_mbps']} | {e.get('choice', e.get('error'))} | {e.get('ran', '')} | "
                         f"{e.get('total_ms', float('nan'))} | {est if est is None else round(est, 1)} |")
    return "\n".join(lines) + "\n"
