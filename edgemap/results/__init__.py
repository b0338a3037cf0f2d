"""The results store: one SQLite file for every measured run and every prediction a deployment made.

Torch-free (sqlite3 + the standard library; PyYAML for imports) so that the edge runtime can record into it.

- `open_store(path)` validates (refuses, untouched, a file that is not an edgemap store or has a newer schema)
  and migrates; `Store.record(*RunRecord)` writes runs and their metrics in one transaction.
- A measuring command ends with one call: `record_run(builder(result))` (edgemap.results.record), e.g.
  `record_run(*bench_runs(result))`; a store that cannot take it is one warning line, never a failed command.
- `edgemap map`: `edgemap.report.map_report.record_and_report_map(summary, out_dir)` records the run and
  writes OUT/report.html.
- `edgemap infer` / `serve`: `log = open_prediction_log(bundle_dir)` (None when recording is off), then
  `log.add(labels, indices, probabilities, source=..., input_bytes=..., latency_ms=..., image=...)` per
  prediction and `log.close()` at the end; batched, WAL, thread-safe, bounded by a retention limit.
"""

from edgemap.results.records import Metric, RunRecord
from edgemap.results.store import Store, default_store_path, open_store

__all__ = ["Metric", "RunRecord", "Store", "default_store_path", "open_store"]
