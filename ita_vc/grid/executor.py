"""Where batches are evaluated: in this process, in a local process pool, or on Dask.

Every way yields the batches' results in the order the batches were given, keeping a bounded
number of batches in flight (twice the workers), so the search folds them deterministically.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from ita_vc.errors import ItaVcError
from ita_vc.grid.evaluate import (
    evaluate_batch,
    evaluate_in_worker,
    init_pool_worker,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ita_vc.grid.evaluate import EvalContext, VariantResult
    from ita_vc.grid.request import Variant

__all__ = ["Executor"]

Batch = list["Variant"]


class _Pending(Protocol):
    """A submitted batch: a local or a Dask future."""

    def result(self) -> list[VariantResult]: ...


def _in_order(
    submit: Callable[[Batch], _Pending], batches: Iterable[Batch], window: int
) -> Iterator[list[VariantResult]]:
    """Submit batches, at most ``window`` in flight, and yield their results in order."""
    pending: list[_Pending] = []
    for batch in batches:
        pending.append(submit(batch))
        if len(pending) >= window:
            yield pending.pop(0).result()
    for future in pending:
        yield future.result()


class Executor:
    """Runs batches of one :class:`~ita_vc.grid.evaluate.EvalContext`, in order.

    ``scheduler`` (a Dask scheduler address) sends them to a cluster, whose workers receive the
    context once (scattered) and key their evaluator by it; else ``workers`` > 1 local
    processes (default: the CPU count) are set up with it; else they run in this process.

    Raises:
        ItaVcError: a scheduler without dask.distributed installed.
    """

    def __init__(self, context: EvalContext, workers: int | None, scheduler: str | None) -> None:
        self.context = context
        self.pool: ProcessPoolExecutor | None = None
        self.client: Any = None
        self.workers = workers or os.cpu_count() or 1
        if scheduler:
            try:
                from distributed import Client
            except ImportError as exc:
                raise ItaVcError(
                    "--scheduler needs dask.distributed (pip install 'dask[distributed]')"
                ) from exc
            self.client = Client(scheduler)  # type: ignore[no-untyped-call]
            self.remote_context = self.client.scatter(context, broadcast=True)
        elif self.workers > 1:
            self.pool = ProcessPoolExecutor(
                self.workers, initializer=init_pool_worker, initargs=(context,)
            )

    def map(self, batches: Iterable[Batch]) -> Iterator[list[VariantResult]]:
        """The results of each batch, in the order of ``batches``."""
        if self.client is not None:
            client, remote = self.client, self.remote_context
            window = max(2, 2 * len(client.scheduler_info().get("workers", {})))
            yield from _in_order(
                lambda batch: client.submit(evaluate_batch, batch, remote, pure=False),
                batches,
                window,
            )
        elif self.pool is not None:
            pool, key = self.pool, self.context.key
            yield from _in_order(
                lambda batch: pool.submit(evaluate_in_worker, batch, key), batches, 2 * self.workers
            )
        else:
            for batch in batches:
                yield evaluate_batch(batch, self.context)

    def close(self) -> None:
        """Stop the pool (pending batches cancelled) or disconnect from the cluster."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        if self.client is not None:
            self.client.close()
