"""The one call a measuring command makes at its end: record its run(s) in the store, or say why not."""

from __future__ import annotations

import os
import sys

from edgemap.errors import EdgemapError
from edgemap.results.records import RunRecord
from edgemap.results.store import default_store_path, open_store

OFF = ("off", "none", "0", "false")


def recording_enabled(store: str | None = None) -> bool:
    """False when --store / EDGEMAP_STORE is 'off' (tests and throw-away runs)."""
    value = store if store is not None else os.environ.get("EDGEMAP_STORE")
    return value is None or value.strip().lower() not in OFF


def record_run(*runs: RunRecord, store: str | None = None, quiet: bool = False) -> list[str]:
    """Write the runs in one transaction and print their ids on stderr. A store that cannot take them
    (not a database, newer schema, locked) is one warning line: the command's figures were already printed,
    and a measuring command should not fail for its bookkeeping. Returns the ids (empty when not recorded)."""
    if not runs or not recording_enabled(store):
        return []
    try:
        ids = open_store(store).record(*runs)
    except EdgemapError as exc:
        print(f"edgemap: warning: run not recorded: {exc}", file=sys.stderr)
        return []
    if not quiet:
        where = default_store_path(store)
        print(f"recorded run{'s' if len(ids) > 1 else ''} {', '.join(ids)} in {where} "
              f"(`edgemap runs show {ids[0]}`, `edgemap report {ids[0]}`)", file=sys.stderr)
    return ids
