"""The core shared by ``race``, ``first_match`` and ``hedge``: several candidate
streams, one winner whose chunks alone are emitted, every loser disposed the instant
the winner is decided."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable

from streamkit._errors import AllFailedError, StreamError
from streamkit._lifecycle import capture, current_reason, disposing
from streamkit._models import Chunk, Usage
from streamkit.telemetry._operations import begin_operation, subscribe_attempt

__all__ = ["Contest", "NoMatchError"]


class NoMatchError(StreamError):
    """A candidate of ``race``/``first_match`` completed without satisfying ``until``."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"completed without a match ({len(text)} chars of text)")


class _Candidate:
    __slots__ = ("buffer", "done", "index", "subscription", "text", "usage")

    def __init__(self, index: int) -> None:
        self.index = index
        self.buffer: list[Chunk] = []
        self.text = ""
        self.usage: Usage | None = None
        self.done = False
        self.subscription = SingleAssignmentDisposable()


class Contest:
    """One subscription's contest. ``wins(text)`` decides on each chunk (``None``:
    only completion decides); ``complete_wins``: the first candidate to complete wins
    when no chunk decided. Each decision is taken under the lock, in the winner's own
    callback, so after it only the winner's thread emits. Losers are disposed for the
    reason ``"lost"``.

    With telemetry on, the contest is one operation span (``operator``, default
    ``name``) with a child per candidate, each ending with its result."""

    def __init__(
        self,
        name: str,
        observer: abc.ObserverBase[Chunk],
        wins: Callable[[str], bool] | None,
        *,
        complete_wins: bool,
        on_all_down: Callable[[], bool] = lambda: False,
        operator: str | None = None,
    ) -> None:
        self.name = name
        self._observer = observer
        self._wins = wins
        self._complete_wins = complete_wins
        self._on_all_down = on_all_down  # start one now instead of failing (hedge)
        self._lock = threading.RLock()
        self.candidates: list[_Candidate] = []
        self.errors: dict[int, BaseException] = {}
        self.winner: _Candidate | None = None
        self.disposed = False
        self._billed: Usage | None = None
        # Candidates started later (hedge's timer) report to the lifecycle observers
        # active at subscribe time (ops.on_usage, a ledger, telemetry), each an attempt.
        self._context = capture()
        self.disposable = CompositeDisposable(Disposable(self._dispose))
        # The contest's span when telemetry is on (None, and nothing more, when off)
        self._operation = operation = begin_operation(operator or name, results=True)
        if operation is not None:
            self._abandoned = weakref.finalize(self.disposable, operation.finish, "abandoned")

    @property
    def decided(self) -> bool:
        """Whether a winner has been decided."""
        return self.winner is not None

    def start(self, source: Observable[Chunk], scheduler: abc.SchedulerBase | None) -> None:
        """Subscribe one more candidate."""
        with self._lock:
            if self.disposed or self.winner is not None:
                return
            candidate = _Candidate(len(self.candidates))
            self.candidates.append(candidate)
        try:
            candidate.subscription.disposable = subscribe_attempt(
                self._context,
                candidate.index + 1,
                self._operation,
                source,
                lambda chunk: self._on_next(candidate, chunk),
                lambda error: self._on_error(candidate, error),
                lambda: self._on_completed(candidate),
                scheduler=scheduler,
            )
        except Exception as error:
            self._on_error(candidate, error)

    def _decide(self, winner: _Candidate) -> list[Chunk]:
        """Under the lock: make ``winner`` the winner, dispose every loser, and return
        its buffered chunks (usage reports include what the losers reported)."""
        self.winner = winner
        operation = self._operation
        if operation is not None:
            operation.result(winner.index + 1, "won")
        for candidate in self.candidates:
            if candidate is not winner:
                if operation is not None and not candidate.done:
                    reason = f"attempt {winner.index + 1} won"
                    operation.result(candidate.index + 1, "lost", reason)
                candidate.done = True
                with disposing("lost"):
                    candidate.subscription.dispose()
                if candidate.usage is not None:
                    billed = self._billed
                    self._billed = candidate.usage if billed is None else billed + candidate.usage
        buffered, winner.buffer = winner.buffer, []
        return [self._billed_chunk(chunk) for chunk in buffered]

    def _billed_chunk(self, chunk: Chunk) -> Chunk:
        if self._billed is None or chunk.usage is None:
            return chunk
        return chunk.model_copy(update={"usage": self._billed + chunk.usage})

    def _on_next(self, candidate: _Candidate, chunk: Chunk) -> None:
        with self._lock:
            if candidate.done:
                return
            if self.winner is candidate:
                flush = [self._billed_chunk(chunk)]
            else:
                candidate.buffer.append(chunk)
                candidate.text += chunk.content
                if chunk.usage is not None:
                    candidate.usage = chunk.usage
                try:
                    won = self._wins is not None and self._wins(candidate.text)
                except Exception as error:
                    self._fail(error)
                    return
                if not won:
                    return
                flush = self._decide(candidate)
        for item in flush:
            self._observer.on_next(item)

    def _on_completed(self, candidate: _Candidate) -> None:
        with self._lock:
            if candidate.done:
                return
            candidate.done = True
            if self.winner is not candidate:
                if not self._complete_wins:
                    self._drop(candidate, NoMatchError(candidate.text))
                    return
                flush = self._decide(candidate)
            else:
                flush = []
        for item in flush:
            self._observer.on_next(item)
        if self._operation is not None:
            self._operation.finish("completed")
        self._observer.on_completed()

    def _on_error(self, candidate: _Candidate, error: Exception) -> None:
        with self._lock:
            if candidate.done:
                return
            candidate.done = True
            if self.winner is not candidate:
                self._drop(candidate, error)
                return
        if self._operation is not None:
            self._operation.finish("error", error=error)
        self._observer.on_error(error)

    def _drop(self, candidate: _Candidate, error: BaseException) -> None:
        """Under the lock: a candidate is out; fail when every one is."""
        self.errors[candidate.index] = error
        if self._operation is not None:
            reason = "no match" if isinstance(error, NoMatchError) else _qualified(error)
            self._operation.result(candidate.index + 1, "failed", reason)
        if all(c.done for c in self.candidates):
            if self._on_all_down():
                return
            causes = [self.errors[c.index] for c in self.candidates]
            self._fail(AllFailedError(self.name, causes))

    def _fail(self, error: Exception) -> None:
        self.disposed = True
        if self._operation is not None:
            self._operation.finish("error", error=error)
        for candidate in self.candidates:
            candidate.done = True
            candidate.subscription.dispose()
        self._observer.on_error(error)

    def _dispose(self) -> None:
        operation = self._operation
        if operation is not None:  # first the operation, then the candidates it waits for
            self._abandoned.detach()
            operation.finish("disposed", disposed_by=current_reason())
        with self._lock:
            self.disposed = True
            candidates = list(self.candidates)
        for candidate in candidates:
            candidate.done = True
            candidate.subscription.dispose()


def _qualified(error: BaseException) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"
