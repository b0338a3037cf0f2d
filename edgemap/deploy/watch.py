"""`edgemap infer BUNDLE DIR --watch`: classify images as they arrive in a drop folder, one result line each.

A file is taken once its size and modification time are unchanged between two polls (a camera may still
be writing it). Results are appended as JSON lines or CSV rows, flushed and synced per image, so a crash
loses nothing that was written; on restart, files already in the output are skipped. An unreadable image
becomes an error line, never a stop. Polling (not inotify) keeps this to the standard library and works
on network and FUSE folders alike.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Callable

from edgemap.deploy.edge import EdgeModel, FileResult
from edgemap.errors import EdgemapError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
CSV_FIELDS = ("time", "file", "top1", "probability", "labels", "probabilities", "error")


class ResultLog:
    """Append-only JSON-lines or CSV file of results, one line per image, durable per line."""

    def __init__(self, path: str | Path, fmt: str | None = None) -> None:
        self.path = Path(path)
        self.fmt = fmt or ("csv" if self.path.suffix.lower() == ".csv" else "jsonl")
        if self.fmt not in ("jsonl", "csv"):
            raise EdgemapError(f"result format must be jsonl or csv, got {self.fmt!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done = self._files_already_logged()
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = open(self.path, "a", newline="")
        if new and self.fmt == "csv":
            self._write_line(",".join(CSV_FIELDS) + "\r\n")

    def _files_already_logged(self) -> set[str]:
        if not self.path.is_file():
            return set()
        with open(self.path, newline="") as f:
            if self.fmt == "csv":
                return {row["file"] for row in csv.DictReader(f) if row.get("file")}
            done = set()
            for line in f:
                try:
                    done.add(json.loads(line)["file"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash: that file is classified again
            return done

    def append(self, record: dict) -> None:
        """Write one result (keys: file, time, and top1/labels/probabilities or error)."""
        if self.fmt == "jsonl":
            self._write_line(json.dumps(record) + "\n")
        else:
            buf = io.StringIO()
            probs = record.get("probabilities") or []
            csv.writer(buf).writerow([record["time"], record["file"], record.get("top1", ""),
                                      probs[0] if probs else "", "|".join(record.get("labels", [])),
                                      "|".join(str(p) for p in probs), record.get("error", "")])
            self._write_line(buf.getvalue())
        self.done.add(record["file"])

    def _write_line(self, text: str) -> None:
        self._f.write(text)
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        """Close the file."""
        self._f.close()


def watch_folder(model: EdgeModel, folder: str | Path, log: ResultLog, top_k: int = 3, interval_s: float = 0.5,
                 once: bool = False, should_stop: Callable[[], bool] = lambda: False,
                 on_result: Callable[[dict], None] | None = None) -> int:
    """Classify new images in `folder` until `should_stop()` (or after one pass with `once`); returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgemapError(f"{folder}: folder to watch not found")
    seen: dict[str, tuple[int, int]] = {}  # file -> (size, mtime) at the last poll
    count = 0
    while True:
        for path in _ready_files(folder, log.done, seen, settle=not once):
            record, result = _classify(model, path, folder, top_k)
            log.append(record)
            if on_result is not None:  # the record, plus what a results store keeps (see edgemap.deploy.recording)
                extra = {} if result is None else {"bundle": model.bundle.resolve(), "input": str(path.absolute()),
                                                   "input_bytes": result.data, "image": result.image,
                                                   "latency_ms": result.latency_ms}
                on_result({"source": "watch", **record, **extra})
            count += 1
        if once or should_stop():
            return count
        time.sleep(interval_s)
        if should_stop():
            return count


def _ready_files(folder: Path, done: set[str], seen: dict, settle: bool) -> list[Path]:
    ready = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if name in done or name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        st = path.stat()
        now = (st.st_size, st.st_mtime_ns)
        if not settle or (st.st_size > 0 and seen.get(name) == now):
            ready.append(path)
        seen[name] = now
    return ready


def classify_one(model: EdgeModel, path: Path, folder: Path, top_k: int) -> dict:
    """One result record for one image file (an error record when it cannot be read)."""
    return _classify(model, path, folder, top_k)[0]


def _classify(model: EdgeModel, path: Path, folder: Path, top_k: int) -> tuple[dict, FileResult | None]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    name = str(path.relative_to(folder))
    try:
        result = model.classify_file(path, top_k)
    except EdgemapError as exc:
        return {"file": name, "time": stamp, "error": str(exc)}, None
    return {"file": name, "time": stamp, **result.prediction.to_dict()}, result
