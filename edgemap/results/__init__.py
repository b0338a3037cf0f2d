"""The results store: one SQLite file for every measured run and every prediction a deployment made.

Torch-free (sqlite3 + the standard library) so that the edge runtime can record into it too.
`open_store(path)` validates and migrates; `Store.record(RunRecord)` writes a run in one transaction;
`PredictionLog` batches a deployment's predictions.
"""

from edgemap.results.records import Metric, RunRecord
from edgemap.results.store import Store, default_store_path, open_store

__all__ = ["Metric", "RunRecord", "Store", "default_store_path", "open_store"]
