"""Where candidates are evaluated: in this process, or as Ray tasks (local Ray or an existing cluster).

Both call the same `evaluate_one(context, candidate) -> TrialMetrics`. The Ray executor needs no shared
file system: the context goes into Ray's object store once (in its plain form) with every file and data set a
trial reads (edgemap.search.portable), and each task sends back its metrics and the files it built, which land
in the driver's cache.
"""

from __future__ import annotations

from typing import Callable

from edgemap.errors import EdgemapError
from edgemap.search.candidate import Candidate
from edgemap.search.records import SearchContext, TrialMetrics

EvaluateOne = Callable[[SearchContext, Candidate], TrialMetrics]


class LocalExecutor:
    """Evaluate candidates one after another in this process."""

    name = "local"
    parallel = 1

    def __init__(self, evaluate_one: EvaluateOne, context: SearchContext) -> None:
        self.evaluate_one, self.context = evaluate_one, context

    def __call__(self, candidates: list[Candidate]) -> list[TrialMetrics]:
        return [self.evaluate_one(self.context, c) for c in candidates]

    def close(self) -> None:
        """Nothing to release."""


class RayExecutor:
    """Evaluate candidates as Ray tasks; `address=None` starts a local Ray with `workers` CPUs."""

    name = "ray"

    def __init__(self, evaluate_one: EvaluateOne, context: SearchContext, address: str | None = None, workers: int = 2,
                 cpus_per_task: float = 1.0, ray_init: dict | None = None) -> None:
        try:
            import ray
        except ModuleNotFoundError:
            raise EdgemapError("the Ray executor needs ray: pip install 'ray[default]'") from None
        self._ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, **(ray_init or {}))
                else:
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, **(ray_init or {}))
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise EdgemapError(f"cannot start or reach Ray{' at ' + address if address else ''}: {exc}") from None
        self.parallel = max(1, int(ray.cluster_resources().get("CPU", workers) // cpus_per_task))
        from edgemap.search import portable

        self._portable, self._cache_dir = portable, context.cache_dir
        self._task = ray.remote(num_cpus=cpus_per_task, max_retries=1)(portable.evaluate_packed)
        self._context = ray.put(portable.pack(context))  # files and data as bytes/arrays: no path is read remotely

    def __call__(self, candidates: list[Candidate]) -> list[TrialMetrics]:
        refs = [self._task.remote(self._context, c.to_dict()) for c in candidates]
        try:
            results = self._ray.get(refs)
        except self._ray.exceptions.RayTaskError as exc:
            raise EdgemapError(f"a Ray task failed: {str(exc).strip().splitlines()[-1]}") from None
        return [self._portable.receive(m, self._cache_dir) for m in results]

    def close(self) -> None:
        """Shut down the Ray instance if this executor started it."""
        if self._started_here:
            self._ray.shutdown()


def make_executor(kind: str, evaluate_one: EvaluateOne, context: SearchContext, ray_address: str | None = None,
                  workers: int = 2) -> LocalExecutor | RayExecutor:
    """The executor named `kind` ("local" or "ray")."""
    if kind == "local":
        return LocalExecutor(evaluate_one, context)
    if kind == "ray":
        return RayExecutor(evaluate_one, context, ray_address, workers)
    raise EdgemapError(f"unknown executor {kind!r}; use local or ray")
