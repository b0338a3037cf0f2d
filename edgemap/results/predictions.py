"""A deployment's prediction history: thread-safe, batched writes into the results store.

Refused requests (a server's 4xx/5xx answers: status, reason, request id; no image) go to the same log with
`add_error` and are written in the same transactions into the store's request_errors table.

`edgemap infer` and `edgemap serve` call `log.add(...)` per prediction; rows are buffered and written
in one transaction by a daemon thread when `batch_size` rows are waiting or every `flush_interval_s`
seconds, and on close: the predicting thread never waits for the disk unless the writer falls 16 batches
behind (then it writes itself, or with block_when_behind=False, as `edgemap serve` uses it, the row is dropped
and counted: an event loop must not wait on a store another process holds locked). The oldest rows beyond
`retention` for the bundle are deleted as it goes (at most 10 % or one batch over the limit in between) and on
close, so a server left running keeps a bounded history. Torch-free; pillow is
used only for low-confidence thumbnails, which the writer thread encodes.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edgemap.results.store import Store, open_store

THUMBNAIL_PX = 48


@dataclass(frozen=True)
class PredictionRow:
    """One prediction as stored (topk: [[label, probability], ...], best first)."""

    time: str
    source: str | None
    input_sha256: str | None
    top1: str
    top1_index: int
    confidence: float
    topk: list
    latency_ms: float | None
    image: object  # a copy of the input image when a thumbnail is wanted; encoded to PNG by the writer, not the caller


@dataclass(frozen=True)
class RequestErrorRow:
    """One refused request as stored (a 4xx/5xx answer of the server: no image, no prediction)."""

    time: str
    request_id: str | None
    path: str | None
    status: int
    reason: str
    detail: str | None
    latency_ms: float | None


def iso_ms(when: float | None = None) -> str:
    """UTC time with milliseconds."""
    when = time.time() if when is None else when
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1000):03d}Z"


def thumbnail_png(image) -> bytes | None:  # noqa: ANN001 - numpy HWC uint8 (or HW grayscale)
    """A small PNG of an input image, or None when pillow is missing or the array is not an image."""
    try:
        import numpy as np
        from PIL import Image

        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
            return None
        img = Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
        img.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()
    except Exception:  # noqa: BLE001 - a thumbnail is a convenience; never fail a prediction for it
        return None


def _copy(image):  # noqa: ANN001, ANN202 - the caller may reuse its buffer before the writer encodes it
    try:
        import numpy as np

        return np.array(image, copy=True)
    except Exception:  # noqa: BLE001 - not an array: no thumbnail
        return None


class PredictionLog:
    """Buffered recorder of one bundle's predictions. Use as a context manager, or call close()."""

    def __init__(self, bundle_sha256: str, store: Store | str | Path | None = None, deployment: str = "",
                 batch_size: int = 64, flush_interval_s: float = 2.0, retention: int = 100_000,
                 thumbnail_below: float = 0.5, block_when_behind: bool = True) -> None:
        if batch_size < 1 or retention < 1:
            raise ValueError("batch_size and retention must be >= 1")
        self.store = store if isinstance(store, Store) else open_store(store)
        self.bundle_sha256, self.deployment = bundle_sha256, deployment
        self.batch_size, self.retention, self.thumbnail_below = batch_size, retention, thumbnail_below
        # False (a server's event loop): when the writer falls 16 batches behind (a store locked by another
        # writer), new rows are dropped and counted rather than written by the caller, which would stall requests
        self.block_when_behind = block_when_behind
        self.added = self.dropped = self.errors_added = 0
        self._rows: list[PredictionRow] = []
        self._errors: list[RequestErrorRow] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one flush at a time keeps the retention trim simple
        self._closed = threading.Event()
        self._full = threading.Event()  # wakes the flusher early when a batch is ready
        self._trim_every = max(batch_size, retention // 10)  # rows between trims: at most 10 % (or a batch) over
        self._since_trim = self._trim_every  # trim on the first write: the store may already hold more
        self._flusher = None
        if flush_interval_s > 0:
            self._flusher = threading.Thread(target=self._flush_periodically, args=(flush_interval_s,),
                                             name="edgemap-prediction-log", daemon=True)
            self._flusher.start()

    def add(self, top_labels: list[str], top_indices: list[int], probabilities: list[float],
            source: str | None = None, input_bytes: bytes | None = None, latency_ms: float | None = None,
            image=None, input_sha256: str | None = None) -> None:  # noqa: ANN001 - numpy image for the thumbnail
        """Record one prediction (top-k best first). `input_bytes` is hashed, not stored (or pass its
        `input_sha256`, hashed where it is cheaper); `image` is kept as a small thumbnail only when the top-1
        probability is below `thumbnail_below`."""
        confidence = float(probabilities[0])
        if input_sha256 is None and input_bytes is not None:
            input_sha256 = hashlib.sha256(input_bytes).hexdigest()
        row = PredictionRow(iso_ms(), source, input_sha256,
                            str(top_labels[0]), int(top_indices[0]), confidence,
                            [[str(lb), round(float(p), 6)] for lb, p in zip(top_labels, probabilities)], latency_ms,
                            _copy(image) if image is not None and confidence < self.thumbnail_below else None)
        self._enqueue(self._rows, row, "added")

    def add_error(self, status: int, reason: str, request_id: str | None = None, path: str | None = None,
                  detail: str | None = None, latency_ms: float | None = None) -> None:
        """Record one refused request (status, reason, request id: no image); buffered like predictions, and
        dropped (counted) rather than written by the caller when the writer is behind and block_when_behind=False."""
        row = RequestErrorRow(iso_ms(), request_id, path, int(status), str(reason), detail and str(detail)[:300],
                              latency_ms)
        self._enqueue(self._errors, row, "errors_added")

    def _enqueue(self, buffer: list, row: object, counter: str) -> bool:
        """Buffer one row for the writer (and count it in `counter`); False when it was dropped (the writer is
        behind and the caller may not wait)."""
        with self._lock:
            if self._closed.is_set():
                raise RuntimeError("PredictionLog is closed")
            if not self.block_when_behind and self._flusher is not None and len(buffer) >= 16 * self.batch_size:
                self.dropped += 1
                return False
            buffer.append(row)
            setattr(self, counter, getattr(self, counter) + 1)
            pending = len(buffer)
        if pending >= self.batch_size:
            if self._flusher is None or (self.block_when_behind and pending >= 16 * self.batch_size):  # it fell behind
                self.flush()
            else:
                self._full.set()  # the caller (a request) does not wait for the disk
        return True

    def flush(self) -> int:
        """Write the buffered rows in one transaction and trim to the retention limit; returns rows written."""
        with self._write_lock:
            with self._lock:
                rows, self._rows = self._rows, []
                errors, self._errors = self._errors, []
            if not rows and not errors:
                return 0
            with self.store.connect() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._insert(conn, rows, errors)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    with self._lock:  # keep them for the next try rather than losing them
                        self._rows[:0] = rows
                        self._errors[:0] = errors
                    raise
            return len(rows) + len(errors)

    def _insert(self, conn, rows: list[PredictionRow], errors: list[RequestErrorRow]) -> None:  # noqa: ANN001
        conn.executemany(
            "INSERT INTO predictions (time, bundle_sha256, deployment, source, input_sha256, top1, top1_index, "
            "confidence, topk, latency_ms, thumbnail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.time, self.bundle_sha256, self.deployment, r.source, r.input_sha256, r.top1, r.top1_index,
              r.confidence, json.dumps(r.topk), r.latency_ms, thumbnail_png(r.image) if r.image is not None
              else None) for r in rows])
        conn.executemany(
            "INSERT INTO request_errors (time, bundle_sha256, deployment, request_id, path, status, reason, detail, "
            "latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.time, self.bundle_sha256, self.deployment, e.request_id, e.path, e.status, e.reason, e.detail,
              e.latency_ms) for e in errors])
        self._since_trim += len(rows) + len(errors)
        if self._since_trim >= self._trim_every:  # each table keeps its newest `retention` rows of this bundle
            for table in ("predictions", "request_errors"):
                conn.execute(f"DELETE FROM {table} WHERE bundle_sha256 = ? AND id <= (SELECT id FROM {table} "
                             "WHERE bundle_sha256 = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                             (self.bundle_sha256, self.bundle_sha256, self.retention))
            self._since_trim = 0

    def _flush_periodically(self, interval: float) -> None:
        while not self._closed.is_set():
            self._full.wait(interval)
            self._full.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a locked store now is retried at the next tick or on close
                pass

    def close(self) -> None:
        """Stop the flusher and write what is left (and trim to the retention limit)."""
        self._closed.set()
        self._full.set()
        self._since_trim = self._trim_every  # the last write trims to the limit
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.flush()

    def __enter__(self) -> "PredictionLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bundle_sha256(bundle: str | Path) -> str:
    """A bundle's identity in the store: sha256 of its manifest.json (which holds the sha256 of every file)."""
    from edgemap.errors import EdgemapError

    manifest = Path(bundle) / "manifest.json"
    if not manifest.is_file():
        raise EdgemapError(f"{bundle}: not an edgemap bundle (no manifest.json)")
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


def open_prediction_log(bundle: str | Path, store: str | None = None, **options) -> PredictionLog | None:  # noqa: ANN003
    """The log `edgemap infer` / `edgemap serve` write to: None when recording is off (EDGEMAP_STORE=off) or the
    store cannot be opened (one warning line: serving must not stop for bookkeeping). Options go to PredictionLog."""
    import sys

    from edgemap.errors import EdgemapError
    from edgemap.results.record import recording_enabled

    if not recording_enabled(store):
        return None
    try:
        return PredictionLog(bundle_sha256(bundle), store, deployment=options.pop("deployment", Path(bundle).name), **options)
    except EdgemapError as exc:
        print(f"edgemap: warning: predictions not recorded: {exc}", file=sys.stderr)
        return None
