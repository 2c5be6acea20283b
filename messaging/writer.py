"""Group commit: the process's one writer of what its sockets send.

Every socket's sends and delivery reports go onto one queue. A single thread
takes everything queued, stores it in one transaction (multi-row statements:
the statements are the same for one message or fifty) and commits; whatever
arrived while that transaction ran goes into the next one. Under load a
commit carries many messages, so the cost per message falls as the rate
rises, instead of eight threads each paying for a transaction per message and
waiting on each other's row locks.

Each send is acknowledged after its transaction commits: its future, created
on the socket's event loop, is resolved there. Events go out through the
fan-out when the transaction commits (``messaging.eventlog.events``). A batch that
fails as a whole (a client id raced in by another process, an unexpected
error) is stored again job by job, so one bad send fails alone; while the
database is unreachable sends fail with ``unavailable`` and delivery reports
wait for the next batch.
"""

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction

from chatserver import metrics
from messaging.eventlog import events
from messaging.fanout import Event, get_fanout

logger = logging.getLogger(__name__)

# After a failed batch of delivery reports (database down), wait this long before the next try.
RETRY_SECONDS = 0.5
# PostgreSQL's deadlock_detected and serialization_failure: the transaction may simply run again.
RETRYABLE = ("40P01", "40001")
DEADLOCK_RETRIES = 3
_REQUEUED = object()


@dataclass(eq=False)
class Job:
    """Work for the writer; ``future`` (if any) is resolved on its own loop after commit."""

    future: asyncio.Future | None = field(default=None, kw_only=True)


@dataclass(eq=False)
class SendJob(Job):
    request: object  # messaging.messages.services.SendRequest
    # Called on the loop with the stored SendResult, before the batch's events go out:
    # the sender's device hears its ack before the echo of its own message.
    on_stored: Callable[[object], None] | None = None


@dataclass(eq=False)
class DeliveryJob(Job):
    """Frames up to ``seq`` of the user's log were sent to a device; ``message_ids``
    are the messages from others among them (their senders hear ``message_delivered``)."""

    user_id: uuid.UUID
    seq: int
    message_ids: list[uuid.UUID]


class Writer:
    def __init__(self, store: Callable[..., list], name: str = "chat-writer") -> None:
        """``store(jobs, together=...)`` stores a batch inside the writer's
        transaction and returns one outcome per job (a result, or a
        DomainError for that job alone); a job stored again alone, after its
        batch failed, gets ``together=False``."""
        self.store = store
        self.name = name
        self._queue: list[Job] = []
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._retry_at = 0.0

    # ---- from the event loop ---------------------------------------------------------

    def submit(self, job: Job) -> None:
        with self._condition:
            self._queue.append(job)
            self._condition.notify()
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    async def call(self, job: Job):
        """Submit ``job`` and wait for its outcome (after the commit)."""
        job.future = asyncio.get_running_loop().create_future()
        self.submit(job)
        return await job.future

    def shutdown(self) -> None:
        """Store what is queued, then stop the thread and give back its connection."""
        with self._condition:
            thread = self._thread
            self._stopping = True
            self._condition.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(30)

    # ---- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._condition:
                    while not self._queue and not self._stopping:
                        self._condition.wait()
                    if not self._queue:
                        return
                    wait = self._retry_at - time.monotonic()
                    if wait > 0 and not self._stopping:
                        self._condition.wait(wait)
                    batch, self._queue = self._queue, []
                self._store(batch)
        finally:
            connection.close()

    def _store(self, batch: list[Job], *, alone: bool = False) -> None:
        started = time.perf_counter(), time.thread_time()
        committed: list[Event] = []
        try:
            outcomes, committed = self._with_retries(batch, together=not alone)
        except (OperationalError, InterfaceError) as error:
            logger.warning("Database unavailable for %d queued writes: %s", len(batch), error)
            close_old_connections()
            connection.close()
            self._retry_at = time.monotonic() + RETRY_SECONDS
            outcomes = [self._unavailable(job) for job in batch]
        except Exception as error:
            if alone:
                logger.exception("Storing a %s failed", type(batch[0]).__name__)
                metrics.ERRORS.labels("websocket").inc()
                outcomes = [error]
            else:
                # One bad job (a retried client id, a deadlock with another
                # process's batch) must not fail the others: each alone.
                for job in batch:
                    self._store([job], alone=True)
                return
        finally:
            metrics.WRITER_BATCH_SIZE.observe(len(batch))
            metrics.DB_CALL_CPU.labels("writer").inc(time.thread_time() - started[1])
            metrics.DB_CALL_WALL.labels("writer").inc(time.perf_counter() - started[0])
            metrics.DB_CALLS.labels("writer").inc()
        self._resolve(batch, outcomes, committed)

    def _with_retries(self, batch: list[Job], *, together: bool) -> tuple[list, list[Event]]:
        """A deadlock with another process's transaction (PostgreSQL picks one
        to abort) or a serialization failure is retried, not reported: the
        batch did nothing and will very likely go through at once."""
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                return self._in_transaction(batch, together=together)
            except OperationalError as error:
                if attempt == DEADLOCK_RETRIES or getattr(error.__cause__, "sqlstate", None) not in RETRYABLE:
                    raise
                logger.info("Writer batch retried after %s", type(error.__cause__).__name__)
        raise AssertionError("unreachable")

    def _in_transaction(self, batch: list[Job], *, together: bool) -> tuple[list, list[Event]]:
        # Pipelined, an error surfaces at a later statement than its own, and
        # an UPDATE's row count is not known at once (the ORM's file attach
        # reads it): only batches of plain direct messages and receipts are
        # pipelined, and one that fails is stored again job by job, unpipelined.
        pipelined = together and all(_plain(job) for job in batch)
        with transaction.atomic(), _pipelined(pipelined), events.collected(defer=True) as collected:
            outcomes = self.store(batch, together=together)
        return outcomes, collected.committed

    def _unavailable(self, job: Job):
        from messaging.exceptions import Unavailable

        if isinstance(job, DeliveryJob):
            self.submit(job)  # not lost: tried again with a later batch, its future still waiting
            return _REQUEUED
        return Unavailable()

    @staticmethod
    def _resolve(batch: list[Job], outcomes: list, committed: list[Event]) -> None:
        """One call per loop: the batch's outcomes, then (on the serving loop) its events."""
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for job, outcome in zip(batch, outcomes, strict=True):
            if job.future is not None and outcome is not _REQUEUED:
                by_loop.setdefault(job.future.get_loop(), []).append((job, outcome))
        fanout = get_fanout()
        for loop, results in by_loop.items():
            if not loop.is_closed():
                events_here = committed if loop is fanout.loop else []
                loop.call_soon_threadsafe(_finish, results, events_here, context=contextvars.Context())
        if committed and fanout.loop not in by_loop:
            fanout.publish(committed)


def _finish(results: list, committed: list[Event]) -> None:
    for job, outcome in results:
        if job.future.done():
            continue
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
            continue
        if isinstance(job, SendJob) and job.on_stored is not None:
            job.on_stored(outcome)
        job.future.set_result(outcome)
    if committed:
        get_fanout().publish(committed)


def _plain(job: Job) -> bool:
    return isinstance(job, DeliveryJob) or (job.request.recipient_id is not None and job.request.attachments is None)


def _pipelined(enabled: bool):
    """On PostgreSQL, psycopg's pipeline mode for the batch: a statement whose
    result nobody reads (a row INSERT, an UPDATE) does not wait for its
    answer; it goes out with the next statement, one round trip fewer each."""
    if not enabled or connection.vendor != "postgresql":
        return contextlib.nullcontext()
    connection.ensure_connection()
    return connection.connection.pipeline()


def store_jobs(jobs: list[Job], *, together: bool = True) -> list:
    """The batch of one transaction: every delivery report, then every send
    (together where it can be, ``messages_send``).

    In that order the conversations' rows, which another process's writer
    may be waiting for, are locked for the shortest time: from the sends'
    first statement to the commit, not through the receipts' statements too.
    """
    from messaging import services

    services.deliveries_record(
        [(job.user_id, job.seq, job.message_ids) for job in jobs if isinstance(job, DeliveryJob)]
    )
    sends = [job.request for job in jobs if isinstance(job, SendJob)]
    results = iter(services.messages_send(sends, together=together))
    return [next(results) if isinstance(job, SendJob) else None for job in jobs]


_writer = Writer(store_jobs)


def get_writer() -> Writer:
    return _writer
