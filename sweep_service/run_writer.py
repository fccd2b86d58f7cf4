"""One writer thread for a sweep's MLflow writes, so Tune's event loop never waits for the store: metric writes
queued per run and flushed before that run's status changes, and the sweep page's rewrites.

(Not MLflow's async logging: its queue is global to the store and every `set_terminated` shuts it down and
joins its thread, about 1 s each, in Tune's loop.)"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class RunWriter:
    def __init__(self) -> None:
        self._pending: dict[str, list[Future[None]]] = {}  # run id -> its writes not yet done
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rfsweep-mlflow-writer")

    def write(self, run_id: str, fn: Callable[..., None], *args: Any) -> None:
        """Queue a write for `run_id`'s run (waited for by `flush`)."""
        self._pending.setdefault(run_id, []).append(self._thread.submit(fn, *args))

    def submit(self, fn: Callable[..., None], *args: Any) -> Future[None]:
        """Queue a task of its own (the sweep page), after the writes queued so far."""
        return self._thread.submit(fn, *args)

    def flush(self, run_id: str | None = None) -> None:
        """Wait for the queued writes (of one run, or all); a failed one is logged, never raised."""
        for rid in [run_id] if run_id else list(self._pending):
            for future in self._pending.pop(rid, []):
                try:
                    future.result()
                except Exception as exc:
                    log.warning("run %s: a metric write failed: %s", rid, exc)

    def close(self) -> None:
        """Flush, then stop the thread (nothing is queued after the sweep's summaries)."""
        self.flush()
        self._thread.shutdown(wait=True)
