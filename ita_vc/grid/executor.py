"""Where batches are evaluated: in this process, in a local process pool, or on Dask.

Every way yields the batches' results in the order the batches were given, keeping a bounded
number of batches in flight (twice the workers), so the caller folds them deterministically.
What a batch is and how it is evaluated is a :class:`Task` (the grid's variants by default;
the validation suite's permutations and per-variant daily returns are others): a context with
a ``key`` is sent to each worker once, and each batch names the key.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ita_vc.errors import ItaVcError
from ita_vc.grid.evaluate import (
    evaluate_batch,
    evaluate_in_worker,
    init_worker,
)
from ita_vc.utils.process import start_pool_worker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ita_vc.grid.evaluate import EvalContext, VariantResult
    from ita_vc.grid.request import Variant

__all__ = ["EVALUATE", "Executor", "Task"]

Batch = list["Variant"]
R = TypeVar("R")


class _Pending(Protocol[R]):  # type: ignore[misc]  # covariance is not the point here
    """A submitted batch: a local or a Dask future."""

    def result(self) -> R: ...


@dataclass(frozen=True)
class Task(Generic[R]):
    """How a batch is evaluated: ``local(batch, context)`` in this process or on Dask (the
    context scattered once), ``in_worker(batch, key)`` in a local pool process set up by
    ``initializer(context)`` (after :func:`~ita_vc.utils.process.start_pool_worker`). All
    three are module-level functions (pickled by name)."""

    local: Callable[[Any, Any], R]
    in_worker: Callable[[Any, str], R]
    initializer: Callable[[Any], None]


EVALUATE: Task[list[VariantResult]] = Task(evaluate_batch, evaluate_in_worker, init_worker)
"""The grid's task: variants -> :class:`~ita_vc.grid.evaluate.VariantResult` s."""


def _start_worker(initializer: Callable[[Any], None], context: Any) -> None:
    """A pool process's start: SIGINT ignored, death with the parent, then the task's own
    initializer."""
    start_pool_worker()
    initializer(context)


def _in_order(
    submit: Callable[[Any], _Pending[R]], batches: Iterable[Any], window: int
) -> Iterator[R]:
    """Submit batches, at most ``window`` in flight, and yield their results in order."""
    pending: list[_Pending[R]] = []
    for batch in batches:
        pending.append(submit(batch))
        if len(pending) >= window:
            yield pending.pop(0).result()
    for future in pending:
        yield future.result()


class Executor(Generic[R]):
    """Runs batches of one context (an :class:`~ita_vc.grid.evaluate.EvalContext` by
    default), in order.

    ``scheduler`` (a Dask scheduler address) sends them to a cluster, whose workers receive the
    context once (scattered) and key their evaluator by it; else ``workers`` > 1 local
    processes (default: the CPU count) are set up with it; else they run in this process.

    Raises:
        ItaVcError: a scheduler without dask.distributed installed.
    """

    def __init__(
        self,
        context: EvalContext | Any,
        workers: int | None,
        scheduler: str | None,
        task: Task[R] = EVALUATE,  # type: ignore[assignment]  # R is list[VariantResult]
    ) -> None:
        self.context = context
        self.task = task
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
                self.workers, initializer=_start_worker, initargs=(task.initializer, context)
            )

    def map(self, batches: Iterable[Any]) -> Iterator[R]:
        """The results of each batch, in the order of ``batches``."""
        task = self.task
        if self.client is not None:
            client, remote = self.client, self.remote_context
            window = max(2, 2 * len(client.scheduler_info().get("workers", {})))
            yield from _in_order(
                lambda batch: client.submit(task.local, batch, remote, pure=False),
                batches,
                window,
            )
        elif self.pool is not None:
            pool, key = self.pool, self.context.key
            yield from _in_order(
                lambda batch: pool.submit(task.in_worker, batch, key), batches, 2 * self.workers
            )
        else:
            for batch in batches:
                yield task.local(batch, self.context)

    def close(self) -> None:
        """Stop the pool (pending batches cancelled) or disconnect from the cluster."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        if self.client is not None:
            self.client.close()
