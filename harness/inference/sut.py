"""The system under test: queues what LoadGen issues, batches it, runs the model (in the
caller's thread, see ``serve``, or a worker thread), answers LoadGen, and survives LoadGen's
failure modes.

LoadGen calls back from its own C++ threads. A Python exception escaping one of
those callbacks aborts the process, and a sample never answered makes
``StartTest`` wait forever. So every callback is wrapped: the first failure is
recorded, every outstanding sample is answered with an empty response (and every
later one as soon as it arrives) so that LoadGen can finish its test, and the
driver raises the recorded failure once ``StartTest`` returns.

Response buffers: LoadGen reads (and in accuracy mode copies) the bytes behind
each response pointer inside ``QuerySamplesComplete``. The prediction array is
held in the responding frame until that call has returned; a temporary freed
earlier would silently corrupt the accuracy log.

Throughput: building LoadGen's per-sample response objects costs about a
microsecond a sample, as much as a small model's compute. With
``respond_in_thread`` a second thread answers LoadGen while the worker already
runs the next batch (torch releases the GIL while it computes); latency-bound
scenarios answer inline and save the hand-off.
"""

from __future__ import annotations

import collections
import itertools
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlperf_loadgen as lg
import numpy as np
from greenperf.errors import GreenperfError
from greenperf.inference.target import InferenceTarget


def _caller_torch_threads() -> int | None:
    """The calling thread's torch intra-op thread count, if torch is in use at all."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


# Samples answered per QuerySamplesComplete call.
ANSWER_SLICE = 32


def _raised(exc: BaseException) -> str:
    """One line naming the exception, for a GreenperfError message."""
    return " ".join(f"raised {type(exc).__name__}: {exc}".split())


@dataclass
class _Chunk:
    """Samples from one issue call, consumed front to back without list copies."""

    ids: list[int]
    indices: list[int]
    arrival: float
    offset: int = 0

    def remaining(self) -> int:
        return len(self.ids) - self.offset


@dataclass(frozen=True)
class SutStats:
    samples_answered: int
    samples_answered_empty: int
    batches: int
    mean_batch_size: float
    predict_seconds: float
    # From the first sample issued to the last one answered, by the SUT's clock.
    answer_span_seconds: float

    @property
    def samples_per_second(self) -> float | None:
        if self.samples_answered == 0 or self.answer_span_seconds <= 0:
            return None
        return self.samples_answered / self.answer_span_seconds


class BatchingSUT:
    """Batches LoadGen's samples (up to ``max_batch``) and answers them from a worker.

    ``batch_timeout_s`` > 0 makes the worker wait up to that long after the oldest
    waiting sample arrived for a fuller batch (the Server scenario); 0 runs
    whatever is waiting at once.
    """

    def __init__(
        self,
        target: InferenceTarget,
        max_batch: int,
        batch_timeout_s: float = 0.0,
        respond_in_thread: bool = False,
        clock: Callable[[], float] = time.monotonic,
        serve_in_caller: bool = False,
    ) -> None:
        self.target = target
        self.max_batch = max_batch
        self.batch_timeout_s = batch_timeout_s
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: collections.deque[_Chunk] = collections.deque()
        self._pending_count = 0
        # Batches taken by the worker and not yet answered, by token; a batch that a
        # failure answered is gone from here, so the worker cannot answer it twice.
        self._in_flight: dict[int, list[int]] = {}
        self._in_flight_count = 0
        self._next_token = 0
        self._last_progress = clock()
        self._first_issue: float | None = None
        self._last_answer: float | None = None
        self._failure: GreenperfError | None = None
        self._flushing = False
        self._closing = False
        self.output_dtype: np.dtype | None = None
        self.row_shape: tuple[int, ...] | None = None
        self._answered = 0
        self._answered_empty = 0
        self._batches = 0
        self._batched_samples = 0
        self._predict_seconds = 0.0
        self._torch_threads = _caller_torch_threads()
        self._responses: queue.SimpleQueue[tuple[int, np.ndarray] | None] | None = (
            queue.SimpleQueue() if respond_in_thread else None
        )
        self._threads: list[threading.Thread] = []
        if not serve_in_caller:
            self._threads.append(
                threading.Thread(target=self._work, name="greenperf-sut", daemon=True))
        if respond_in_thread:
            self._threads.append(
                threading.Thread(target=self._answer_loop, name="greenperf-answer", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    # ----- LoadGen callbacks: each one must never raise -----

    def issue_fast(self, ids: list[int], indices: list[int]) -> None:
        """FastSUT callback: parallel lists of response ids and sample indices."""
        self._guarded_issue(ids, lambda: (list(ids), list(indices)))

    def issue(self, samples: list[Any]) -> None:
        """Plain SUT callback: a list of ``lg.QuerySample``."""
        self._guarded_issue(samples, lambda: ([s.id for s in samples], [s.index for s in samples]))

    def flush(self) -> None:
        """LoadGen sends no more queries: stop waiting for fuller batches."""
        with self._cond:
            self._flushing = True
            self._cond.notify_all()

    def load_samples(self, indices: list[int]) -> None:
        self._guarded(f"{self.target.name}.load_samples", self.target.load_samples, indices)

    def unload_samples(self, indices: list[int]) -> None:
        self._guarded(f"{self.target.name}.unload_samples", self.target.unload_samples, indices)

    # ----- state the driver reads -----

    @property
    def failure(self) -> GreenperfError | None:
        return self._failure

    def outstanding_count(self) -> int:
        with self._cond:
            return self._pending_count + self._in_flight_count

    def stalled_for(self) -> float:
        """Seconds without any answer while samples are outstanding (0 when idle)."""
        with self._cond:
            if self._pending_count + self._in_flight_count == 0:
                return 0.0
            return self._clock() - self._last_progress

    def stats(self) -> SutStats:
        with self._cond:
            return SutStats(
                samples_answered=self._answered,
                samples_answered_empty=self._answered_empty,
                batches=self._batches,
                mean_batch_size=self._batched_samples / self._batches if self._batches else 0.0,
                predict_seconds=self._predict_seconds,
                answer_span_seconds=(
                    self._last_answer - self._first_issue
                    if self._first_issue is not None and self._last_answer is not None
                    else 0.0
                ),
            )

    def fail(self, where: str, problem: str) -> None:
        """Record a failure (the first one wins) and answer every outstanding sample."""
        with self._cond:
            if self._failure is None:
                self._failure = GreenperfError(where, problem)
            ids = [i for chunk in self._pending for i in chunk.ids[chunk.offset :]]
            ids += [i for batch in self._in_flight.values() for i in batch]
            self._pending.clear()
            self._in_flight.clear()
            self._pending_count = self._in_flight_count = 0
            self._cond.notify_all()
        self._answer_empty(ids)

    def serve(self) -> None:
        """Run the batching worker in the calling thread until ``stop_serving``.

        Torch's OpenMP team belongs to the thread that made it: the model runs fastest in the
        thread that has been running it (a second team in a worker thread makes libgomp
        throttle its spin-waits on a machine with few cores; ResNet lost a fifth of its
        speed that way on 2 cores)."""
        self._work()

    def stop_serving(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def close(self, join_timeout_s: float = 5.0) -> bool:
        """Stop the threads; False when one is stuck in the model (left as a daemon)."""
        self.stop_serving()
        for thread in self._threads:
            if thread.name == "greenperf-sut":
                thread.join(join_timeout_s)
        if self._responses is not None:
            self._responses.put(None)
            self._threads[-1].join(join_timeout_s)
        return not any(thread.is_alive() for thread in self._threads)

    # ----- issuing -----

    def _guarded(self, where: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - escaping into LoadGen aborts the process
            self.fail(where, _raised(exc))

    def _guarded_issue(self, raw: list[Any], unpack: Any) -> None:
        try:
            ids, indices = unpack()
            self._check_issue(ids, indices)
        except BaseException as exc:  # noqa: BLE001 - escaping into LoadGen aborts the process
            self.fail("LoadGen issue_queries", _raised(exc))
            self._answer_raw_empty(raw)
            return
        try:
            self._register(ids, indices)
        except BaseException as exc:  # noqa: BLE001 - escaping into LoadGen aborts the process
            # The samples are queued or answered by now; failing drains the queue.
            self.fail("LoadGen issue_queries", _raised(exc))

    def _check_issue(self, ids: list[int], indices: list[int]) -> None:
        """Sanity checks on one issue call, before anything is queued."""
        if len(ids) != len(indices):
            raise ValueError(f"{len(ids)} response ids for {len(indices)} sample indices")

    def _register(self, ids: list[int], indices: list[int]) -> None:
        """Queue the samples, or answer them at once when the test has already failed."""
        with self._cond:
            if self._failure is None:
                now = self._clock()
                if self._first_issue is None:
                    self._first_issue = now
                if self._pending_count + self._in_flight_count == 0:
                    self._last_progress = now
                self._pending.append(_Chunk(ids, indices, now))
                self._pending_count += len(ids)
                self._cond.notify()
                return
        self._answer_empty(ids)

    def _answer_raw_empty(self, raw: list[Any]) -> None:
        try:
            ids = [s if isinstance(s, int) else s.id for s in raw]
        except BaseException:  # noqa: BLE001 - nothing left to answer with; the watchdog ends it
            return
        self._answer_empty(ids)

    def _answer_empty(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._cond:
            self._answered_empty += len(ids)
        lg.QuerySamplesComplete([lg.QuerySampleResponse(i, 0, 0) for i in ids])

    # ----- batching and inference -----

    def _next_batch(self) -> tuple[int, list[int], list[int]] | None:
        with self._cond:
            while True:
                if self._closing:
                    return None
                if self._pending_count == 0:
                    self._cond.wait()
                    continue
                if (
                    self.batch_timeout_s > 0
                    and self._pending_count < self.max_batch
                    and not self._flushing
                ):
                    left = self._pending[0].arrival + self.batch_timeout_s - self._clock()
                    if left > 0:
                        self._cond.wait(left)
                        continue
                ids, indices = self._take(self.max_batch)
                token = self._next_token
                self._next_token += 1
                self._in_flight[token] = ids
                self._in_flight_count += len(ids)
                return token, ids, indices

    def _take(self, n: int) -> tuple[list[int], list[int]]:
        ids: list[int] = []
        indices: list[int] = []
        while self._pending and len(ids) < n:
            chunk = self._pending[0]
            take = min(n - len(ids), chunk.remaining())
            start, stop = chunk.offset, chunk.offset + take
            if start == 0 and stop == len(chunk.ids):
                ids.extend(chunk.ids)
                indices.extend(chunk.indices)
            else:
                ids.extend(chunk.ids[start:stop])
                indices.extend(chunk.indices[start:stop])
            chunk.offset = stop
            if chunk.remaining() == 0:
                self._pending.popleft()
        self._pending_count -= len(ids)
        return ids, indices

    def _work(self) -> None:
        if self._torch_threads is not None:
            # OpenMP/MKL thread counts are per OS thread: without this a fresh thread
            # runs torch with the machine default, and its matmuls were ~1000x slower
            # next to the caller's spinning OpenMP team on 2 cores.
            sys.modules["torch"].set_num_threads(self._torch_threads)
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            token, _, indices = batch
            try:
                started = time.perf_counter()
                rows = self._predict(indices)
                with self._cond:
                    self._predict_seconds += time.perf_counter() - started
                if self._responses is not None:
                    self._responses.put((token, rows))
                else:
                    self._respond(token, rows)
            except GreenperfError as err:
                self.fail(err.where, err.problem)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any model error
                self.fail(f"{self.target.name}.predict", _raised(exc))
            # Anything else (Ctrl-C while serving in the main thread) goes on to the driver,
            # which answers the outstanding samples.

    def _answer_loop(self) -> None:
        while True:
            item = self._responses.get()
            if item is None:
                return
            try:
                self._respond(*item)
            except BaseException as exc:  # noqa: BLE001 - answering must not stop
                self.fail("LoadGen QuerySamplesComplete", _raised(exc))

    def _predict(self, indices: list[int]) -> np.ndarray:
        where = f"{self.target.name}.predict"
        rows = np.ascontiguousarray(np.asarray(self.target.predict(indices)))
        if rows.ndim == 0 or rows.shape[0] != len(indices):
            got = "a scalar" if rows.ndim == 0 else f"{rows.shape[0]} rows"
            raise GreenperfError(where, f"returned {got} for {len(indices)} samples")
        if rows.dtype.hasobject:
            raise GreenperfError(where, "returned an object array; LoadGen needs plain bytes")
        if self.output_dtype is None:
            self.output_dtype, self.row_shape = rows.dtype, rows.shape[1:]
        elif rows.dtype != self.output_dtype or rows.shape[1:] != self.row_shape:
            raise GreenperfError(
                where,
                f"returned rows of {rows.dtype}{list(rows.shape[1:])} after "
                f"{self.output_dtype}{list(self.row_shape or ())}; every row must match",
            )
        return rows

    # ----- answering -----

    def _respond(self, token: int, rows: np.ndarray) -> None:
        with self._cond:
            ids = self._in_flight.pop(token, None)
            if ids is None:  # a failure or the watchdog has answered this batch already
                return
            self._in_flight_count -= len(ids)
            self._last_progress = self._last_answer = self._clock()
            self._answered += len(ids)
            self._batches += 1
            self._batched_samples += len(ids)
        row_bytes = rows.nbytes // len(ids)
        base = rows.ctypes.data
        start = 0
        try:
            # In slices: QuerySamplesComplete releases the GIL, so the worker's next
            # predict is never kept waiting for a whole batch's response objects.
            for start in range(0, len(ids), ANSWER_SLICE):
                part = ids[start : start + ANSWER_SLICE]
                first = base + start * row_bytes
                addresses = (
                    range(first, first + len(part) * row_bytes, row_bytes)
                    if row_bytes
                    else itertools.repeat(base, len(part))
                )
                responses = list(
                    map(lg.QuerySampleResponse, part, addresses, itertools.repeat(row_bytes))
                )
                lg.QuerySamplesComplete(responses)
        except BaseException:
            # These ids have left the in-flight table; answer them or LoadGen waits forever.
            self._answer_empty(ids[start:])
            raise
        # `rows` owns the memory every response points into. It must outlive the calls
        # above; this explicit use keeps that true whatever the code above becomes.
        del rows
