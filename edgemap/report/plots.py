"""The report's figures: matplotlib (Agg) drawn to PNG and returned as data: URIs, so the HTML needs no files."""

from __future__ import annotations

import base64
import io
from collections import Counter

import numpy as np

COLORS = {"tried": "#b8b8b8", "front": "#1f77b4", "chosen": "#d62728", "ref": "#2ca02c"}


def _plt():  # noqa: ANN202 - matplotlib.pyplot
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_data_uri(fig) -> str:  # noqa: ANN001 - Figure
    """PNG bytes of a figure as a data: URI (the figure is closed)."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def png_uri(data: bytes) -> str:
    """Stored PNG bytes (a thumbnail) as a data: URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode()


def pareto(trials: list[dict], front: list[str], chosen: str | None, x: str, xlabel: str) -> str:
    """Accuracy against `x` (latency or size) for every candidate; the front joined, the chosen one starred."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    pts = [(t[x], t["accuracy"], t["key"]) for t in trials if t.get(x) is not None and t.get("accuracy") is not None]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=COLORS["tried"], label="tried", s=22)
    fr = sorted((p for p in pts if p[2] in front), key=lambda p: p[0])
    if fr:
        ax.plot([p[0] for p in fr], [p[1] for p in fr], "o-", c=COLORS["front"], label="Pareto front (accuracy, latency, size)")
    ch = [p for p in pts if p[2] == chosen]
    if ch:
        ax.scatter([ch[0][0]], [ch[0][1]], marker="*", s=260, c=COLORS["chosen"], label=f"chosen: {chosen}", zorder=5)
    ax.set_xscale("log" if pts and max(p[0] for p in pts) > 20 * max(min(p[0] for p in pts), 1e-12) else "linear")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return to_data_uri(fig)


def layer_bars(names: list[str], latency_us: list[float], macs: list[int], top: int = 15) -> str:
    """The costliest layers: estimated latency (µs) and MACs side by side."""
    plt = _plt()
    order = np.argsort(latency_us)[::-1][:top][::-1]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 0.3 * len(order) + 1.2), sharey=True)
    labels = [names[i][-28:] for i in order]
    a1.barh(labels, [latency_us[i] for i in order], color=COLORS["front"])
    a1.set_xlabel("estimated latency, µs")
    a2.barh(labels, [macs[i] / 1e6 for i in order], color=COLORS["ref"])
    a2.set_xlabel("MMACs")
    a1.tick_params(axis="y", labelsize=7)
    return to_data_uri(fig)


def confusion(matrix: list[list[int]], classes: list[str]) -> str:
    """Confusion matrix heatmap, rows true classes, counts written in the cells."""
    plt = _plt()
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(0.45 * len(classes) + 2.5, 0.45 * len(classes) + 2))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(classes)), [c[:8] for c in classes], rotation=60, fontsize=7)
    ax.set_yticks(range(len(classes)), [c[:12] for c in classes], fontsize=7)
    if len(classes) <= 20:
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return to_data_uri(fig)


def bars(labels: list[str], values: list[float], xlabel: str, color: str = COLORS["front"]) -> str:
    """Horizontal bars (per-class accuracy, class distribution, p50 per model)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(labels) + 1.2))
    ax.barh([lb[:30] for lb in labels][::-1], list(values)[::-1], color=color)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    return to_data_uri(fig)


def over_time(times: list, values: list[float], ylabel: str, classes: list[str] | None = None) -> str:
    """A deployment's predictions over time: one point per prediction, coloured by predicted class."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3))
    if classes:
        common = [c for c, _ in Counter(classes).most_common(10)]
        for c in common:
            idx = [i for i, k in enumerate(classes) if k == c]
            ax.scatter([times[i] for i in idx], [values[i] for i in idx], s=8, label=c)
        ax.legend(fontsize=6, ncol=5, loc="lower left")
    else:
        ax.plot(times, values, ".", ms=3)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return to_data_uri(fig)


def histogram(values: list[float], xlabel: str) -> str:
    """Distribution of a figure (latency) with its median and p99 marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3))
    v = np.asarray(values, dtype=float)
    ax.hist(v, bins=min(40, max(5, len(v) // 5)), color=COLORS["front"])
    for q, style in ((50, "-"), (99, "--")):
        ax.axvline(np.percentile(v, q), color=COLORS["chosen"], linestyle=style, label=f"p{q} {np.percentile(v, q):.3g}")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7)
    return to_data_uri(fig)
