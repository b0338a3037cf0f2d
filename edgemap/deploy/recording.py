"""Record a deployment's predictions in the results store from `edgemap infer`, `infer --watch` and `serve`.

The result hooks of `watch_folder` and the server call a PredictionRecorder once per prediction with a dict:

    bundle         the bundle folder that answered (a SIGHUP reload switches it: rows carry its sha256)
    labels, indices, probabilities   the top-k, best first
    input          the input's name: a file path, or the request id (+ "#i" for the i-th image of a request)
    input_bytes or input_sha256      the raw input (hashed, never stored) or its hash
    latency_ms     measured time of this prediction (a request's time for every image of it)
    image          the decoded uint8 image (a thumbnail is kept only for low-confidence predictions)

A refused request (the server's 4xx/5xx answers) is a dict with `status` instead of labels: bundle, status,
reason, request_id, path, detail, latency_ms; it becomes a row of the store's request_errors table.

Rows go to edgemap.results.predictions.PredictionLog (batched writes by a background thread, WAL, retention),
one log per bundle. Recording never fails a prediction: a store that cannot be opened or written is one
warning line on stderr, then recording stops. Torch-free.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

KEPT_LOGS = 2  # the bundle now serving and the one before a reload (its last requests may still finish)


class PredictionRecorder:
    """The results-store side of the result hooks; call close() when serving or inferring ends."""

    def __init__(self, deployment: str, store: str | None = None, retention: int = 100_000,
                 block_when_behind: bool = True) -> None:
        """`deployment` names where the bundle runs (the served path); `store` as --store / $EDGEMAP_STORE;
        `block_when_behind=False` for a server: rows are dropped rather than written on the event loop."""
        self.deployment, self.store, self.retention = deployment, store, retention
        self.block_when_behind = block_when_behind
        self.recorded = self.refused = self.dropped = 0
        self.disabled = False
        self._logs: dict[Path, object] = {}  # bundle folder -> PredictionLog, oldest first
        self._closing: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shas: list[str] = []

    def start(self, bundle: str | Path) -> None:
        """Open the store for `bundle` now, so that a store that cannot be used is said before the first prediction."""
        try:
            self._log_for(Path(bundle).resolve())
        except Exception as exc:  # noqa: BLE001 - as in __call__
            self._give_up(exc)

    def __call__(self, result: dict) -> None:
        """The hook: record one prediction, or one refused request (other records, e.g. the watcher's unreadable
        files, are skipped)."""
        if self.disabled or ("labels" not in result and "status" not in result):
            return
        try:
            log = self._log_for(Path(result["bundle"]))
            if log is not None and "status" in result:
                log.add_error(result["status"], result["reason"], result.get("request_id"), result.get("path"),
                              result.get("detail"), result.get("latency_ms"))
            elif log is not None:
                log.add(result["labels"], result["indices"], result["probabilities"], source=result.get("input"),
                        input_bytes=result.get("input_bytes"), latency_ms=result.get("latency_ms"),
                        image=result.get("image"), input_sha256=result.get("input_sha256"))
        except Exception as exc:  # noqa: BLE001 - bookkeeping must never fail a prediction
            self._give_up(exc)

    def _log_for(self, bundle: Path):  # noqa: ANN202 - PredictionLog | None
        log = self._logs.get(bundle)
        if log is not None:
            return log
        with self._lock:
            from edgemap.results.predictions import open_prediction_log

            log = open_prediction_log(bundle, self.store, deployment=self.deployment, retention=self.retention,
                                      block_when_behind=self.block_when_behind)
            if log is None:  # store off, or unusable (open_prediction_log said why)
                self.disabled = True
                return None
            self._shas.append(log.bundle_sha256)
            while len(self._logs) >= KEPT_LOGS:  # a reload: close the oldest off this thread (it flushes)
                old = self._logs.pop(next(iter(self._logs)))
                self._close_in_background(old)
            self._logs[bundle] = log
            return log

    def _close_in_background(self, log) -> None:  # noqa: ANN001 - PredictionLog
        t = threading.Thread(target=self._close_one, args=(log,), name="edgemap-prediction-log-close", daemon=True)
        self._closing.append(t)
        t.start()

    def _close_one(self, log) -> None:  # noqa: ANN001 - PredictionLog
        try:
            log.close()
        except Exception as exc:  # noqa: BLE001 - the store failed on the last write: say so once
            self._give_up(exc)
        self.recorded += log.added
        self.refused += log.errors_added
        self.dropped += log.dropped

    def _give_up(self, exc: Exception) -> None:
        if not self.disabled:
            self.disabled = True
            print(f"edgemap: warning: predictions no longer recorded: {exc}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Write what is buffered and stop; prints one line saying what was recorded (or dropped) where."""
        with self._lock:
            logs, self._logs = list(self._logs.values()), {}
        for log in logs:
            self._close_one(log)
        for t in self._closing:
            t.join(timeout=35)
        if self.recorded or self.refused or self.dropped:
            from edgemap.results.store import default_store_path

            shas = ", ".join(s[:12] for s in self._shas)
            lost = f"; {self.dropped} dropped (the store stayed locked)" if self.dropped else ""
            refused = f" and {self.refused} refused requests" if self.refused else ""
            print(f"edgemap: recorded {self.recorded} predictions{refused} of bundle {shas} in "
                  f"{default_store_path(self.store)}{lost} (`edgemap report --deployment {self._shas[-1][:12]}`)",
                  file=sys.stderr, flush=True)

    def __enter__(self) -> "PredictionRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_recorder(record: bool, deployment: str | Path, retention: int = 100_000,
                  block_when_behind: bool = True) -> PredictionRecorder | None:
    """The recorder `edgemap infer` / `serve` use: None with --no-record; the store is the global --store /
    $EDGEMAP_STORE ('off' records nothing), opened on the first prediction."""
    from edgemap.errors import EdgemapError

    if retention < 1:
        raise EdgemapError(f"--retention must be >= 1 prediction, got {retention}")
    from edgemap.results.record import recording_enabled

    if not record or not recording_enabled():  # --no-record, or --store off: the hooks are not even called
        return None
    return PredictionRecorder(str(Path(deployment).absolute()), retention=retention,
                              block_when_behind=block_when_behind)
