"""Dynamic micro-batching for the server: requests that arrive together run as one batch, off the event loop.

Admission is bounded: at most `max_queue` requests may be inside the server (reading, decoding, queued or
running) at once; one more is refused at the door (the server answers 503 + Retry-After) instead of
queueing without bound, so memory stays bounded and accepted requests keep their latency.

Batching is greedy: while one batch runs on the inference thread, new requests queue up and form the
next batch. A lone request does not wait; the worker waits up to `max_wait_ms` for more only when more
admitted requests are on their way (being read or decoded), so batching adds no latency at low load.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgemap.errors import EdgemapError


@dataclass(frozen=True)
class BatchConfig:
    """Micro-batching and admission settings (max_batch=1 turns batching off)."""

    max_batch: int = 32
    max_wait_ms: float = 2.0
    max_queue: int = 128

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_queue < 1 or self.max_wait_ms < 0:
            raise EdgemapError(f"batching: max_batch and max_queue must be >= 1 and max_wait_ms >= 0, got {self}")


class Ticket:
    """One admitted request's place in the server."""

    __slots__ = ("queued",)

    def __init__(self) -> None:
        self.queued = False


class MicroBatcher:
    """Queue preprocessed inputs; one worker task runs them in batches on a single inference thread."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], config: BatchConfig,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self._run = run  # float inputs N x ... -> outputs N x ...; runs on the inference thread
        self.config = config
        self._on_batch = on_batch  # (batch size in images, seconds) after each batch, for the metrics
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgemap-infer")
        self._queue: deque[tuple[np.ndarray, asyncio.Future, Callable]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.admitted = 0  # requests inside the server now
        self.preparing = 0  # admitted requests not yet queued (being read or decoded): more work on its way

    # admission -------------------------------------------------------------------------------------------
    def admit(self) -> Ticket | None:
        """Take a place for one request; None when the server is full (the caller answers 503)."""
        if self.admitted >= self.config.max_queue:
            return None
        self.admitted += 1
        self.preparing += 1
        return Ticket()

    def release(self, ticket: Ticket) -> None:
        """Give back a place taken by admit() (once, whatever happened to the request)."""
        if not ticket.queued:
            self.preparing -= 1
        self.admitted -= 1

    @property
    def queued_images(self) -> int:
        """Images waiting for the inference thread."""
        return sum(len(item[0]) for item in self._queue)

    # work ------------------------------------------------------------------------------------------------
    async def submit(self, inputs: np.ndarray, ticket: Ticket, run: Callable[[np.ndarray], np.ndarray] | None = None
                     ) -> np.ndarray:
        """Outputs for `inputs` (N preprocessed samples), computed in some batch by `run` (default: the batcher's;
        a reloaded model brings its own, and requests prepared for different models never share a batch)."""
        self._ensure_worker()
        if not ticket.queued:
            ticket.queued = True
            self.preparing -= 1
        future = asyncio.get_running_loop().create_future()
        self._queue.append((inputs, future, run or self._run))
        self._wakeup.set()
        return await future

    def _ensure_worker(self) -> None:
        # the worker belongs to the running loop; a new loop (tests, a restarted server) gets a new worker
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._work())

    async def _work(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather_more()
            batch = self._take_batch()
            if batch:
                await self._run_batch(batch)

    async def _gather_more(self) -> None:
        """Wait up to max_wait_ms for a fuller batch, but only while more admitted requests are on their way."""
        deadline = time.perf_counter() + self.config.max_wait_ms / 1000
        while (self.queued_images < self.config.max_batch and self.preparing > 0
               and (left := deadline - time.perf_counter()) > 0):
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except TimeoutError:
                return

    def _take_batch(self) -> list[tuple[np.ndarray, asyncio.Future, Callable]]:
        batch, images = [], 0
        while self._queue and (not batch or images + len(self._queue[0][0]) <= self.config.max_batch):
            item = self._queue.popleft()
            if not item[1].done():  # a request that timed out meanwhile is dropped here
                batch.append(item)
                images += len(item[0])
        return batch

    async def _run_batch(self, batch: list[tuple[np.ndarray, asyncio.Future, Callable]]) -> None:
        t0 = time.perf_counter()
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(self._pool, _run_grouped,
                                                                       [(x, run) for x, _, run in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every request of the batch
            for _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        if self._on_batch:
            self._on_batch(sum(len(item[0]) for item in batch), time.perf_counter() - t0)
        for (_, fut, _), out in zip(batch, outputs):
            if not fut.done():
                fut.set_result(out)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until the queue is empty (graceful shutdown), then stop the worker and the inference thread."""
        deadline = time.perf_counter() + timeout_s
        while (self._queue or self.admitted) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
        self._pool.shutdown(wait=True)


def _run_grouped(items: list[tuple[np.ndarray, Callable]]) -> list[np.ndarray]:
    """Run requests' inputs as few calls as possible: one per model and distinct sample shape (models that take
    any image size get unresized images of different sizes); returns one output array per request."""
    inputs = [x for x, _ in items]
    outputs: list[np.ndarray | None] = [None] * len(inputs)
    groups: dict[tuple, list[int]] = {}
    for i, (x, run) in enumerate(items):
        groups.setdefault((id(run), x.shape[1:]), []).append(i)
    for idx in groups.values():
        out = items[idx[0]][1](np.concatenate([inputs[i] for i in idx]))
        start = 0
        for i in idx:
            outputs[i] = out[start:start + len(inputs[i])]
            start += len(inputs[i])
    return outputs
