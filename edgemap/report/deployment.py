"""A deployment's history from its recorded predictions: over time, class distribution, latency, doubtful inputs."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from edgemap.report import plots
from edgemap.report.sections import section, table


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def deployment_sections(rows: list[dict], least_confident: int = 12) -> list[dict]:
    """Sections for one bundle's predictions (oldest first, as queries.predictions returns them)."""
    first, last = rows[0], rows[-1]
    times = [_time(r["time"]) for r in rows]
    counts = Counter(r["top1"] for r in rows)
    notes = [f"Bundle sha256 {first['bundle_sha256'][:16]}…{' (' + first['deployment'] + ')' if first['deployment'] else ''}: "
             f"{len(rows):,} predictions from {first['time']} to {last['time']}."]
    images = [{"alt": "confidence over time", "uri": plots.over_time(times, [r["confidence"] for r in rows], "top-1 probability",
                                                                     [r["top1"] for r in rows])},
              {"alt": "class distribution", "uri": plots.bars([c for c, _ in counts.most_common()],
                                                              [n for _, n in counts.most_common()], "predictions per class")}]
    lat = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    if lat:
        images.append({"alt": "latency histogram", "uri": plots.histogram(lat, "latency per prediction, ms (measured)")})
        images.append({"alt": "latency over time", "uri": plots.over_time(
            [t for t, r in zip(times, rows) if r["latency_ms"] is not None], lat, "latency, ms")})
    else:
        notes.append("No latency was recorded with these predictions.")
    doubtful = sorted(rows, key=lambda r: r["confidence"])[:least_confident]
    thumbs, missing = [], 0
    for r in doubtful:
        uri = _thumbnail(r)
        if uri is None:
            missing += 1
            continue
        thumbs.append({"uri": uri, "caption": f"{r['top1']} {r['confidence']:.2f} · {Path(r['source'] or '-').name}"})
    if missing:
        notes.append(f"{missing} of the {len(doubtful)} least confident inputs have no thumbnail (not kept, and the file is gone).")
    return [section("Deployment: predictions over time", notes=notes, images=images,
                    tables=[table("class distribution", ["class", "predictions", "share %"],
                                  [[c, n, n / len(rows) * 100] for c, n in counts.most_common()])]),
            section(f"The {len(doubtful)} least confident inputs", thumbs=thumbs, tables=[table(
                "lowest top-1 probability first", ["time", "input", "top-1", "probability", "top-k", "latency ms"],
                [[r["time"], r["source"] or r["input_sha256"] or "-", r["top1"], r["confidence"],
                  ", ".join(f"{lb} {p:.2f}" for lb, p in r["topk"]), r["latency_ms"]] for r in doubtful])])]


def refused_section(errors: list[dict], predictions: list[dict], latest: int = 10) -> dict:
    """The refused requests of a deployment (the server's 4xx/5xx answers): counts by status and reason, and the
    error rate over all requests (a request of several images is one request: its rows share the request id)."""
    answered = len({(r["source"] or "").split("#")[0] for r in predictions})
    total = answered + len(errors)
    by_kind = Counter((e["status"], e["reason"]) for e in errors)
    notes = [f"{len(errors):,} refused requests from {errors[0]['time']} to {errors[-1]['time']}; "
             f"{answered:,} answered with predictions: error rate {len(errors) / total:.1%} of {total:,} requests."]
    return section("Deployment: refused requests", notes=notes, tables=[
        table("by status and reason", ["status", "reason", "requests", "share of all requests %"],
              [[status, reason, n, n / total * 100] for (status, reason), n in by_kind.most_common()]),
        table(f"the latest {min(latest, len(errors))}", ["time", "request id", "path", "status", "reason", "detail"],
              [[e["time"], e["request_id"] or "-", e["path"] or "-", e["status"], e["reason"], e["detail"] or ""]
               for e in errors[-latest:][::-1]])])


def _thumbnail(row: dict) -> str | None:
    """The stored thumbnail, else a thumbnail of the input file if it is still readable."""
    if row.get("thumbnail"):
        return plots.png_uri(row["thumbnail"])
    src = row.get("source")
    if src and Path(src).is_file():
        try:
            import numpy as np
            from PIL import Image

            from edgemap.results.predictions import thumbnail_png

            with Image.open(src) as img:
                data = thumbnail_png(np.asarray(img.convert("RGB")))
            return plots.png_uri(data) if data else None
        except Exception:  # noqa: BLE001 - an unreadable input just has no picture
            return None
    return None
