"""``Deadlines``: one time budget for a call, checked per attempt and overall.

Four clocks, each optional, in seconds:

- ``headers``: from sending the request (connect included) to its response headers,
  that is until the SDK returns its stream (for cohere's and google-genai's streams,
  which make the request at their first read, until an HTTP response is under them).
  Only there: once the headers are in, ``first_chunk`` and ``idle`` apply. streamkit
  times it itself and closes a late request, sync and async alike: on the sync path,
  where a read blocked before the headers has no response object to reach its socket
  through, it shuts down the socket the reading thread is blocked on. A stream with a
  ``headers`` deadline is requested with the SDK's own retries off (one request per
  attempt: a retry is ``ops.retry_on_error``'s or ``ops.fallback``'s), so the deadline
  is never spent two or three times over behind its back.
- ``first_chunk``: from subscribing to the first chunk that carries output (text,
  thinking, a refusal, a tool call or audio): a provider's opening event without any
  (Anthropic's ``message_start``, OpenAI's role chunk) does not end the wait.
- ``idle``: between chunks after the first.
- ``total``: from subscribing to the end.

Given to ``sk.stream(..., deadlines=...)`` they bound every subscription of the
stream, that is every attempt of ``ops.retry_on_error``, ``ops.fallback``,
``ops.hedge`` or ``sk.race``; given to ``ops.deadlines(...)`` after those operators
they bound the whole call across its attempts (``headers`` is refused there: an
operator cannot see when response headers arrive). A
deadline that passes fails the stream with :class:`~streamkit.StreamTimeoutError`
whose ``kind`` says which one (``"headers"``, ``"first chunk"``, ``"idle"``,
``"total"``) and ``scope`` whose (``"attempt"`` or ``"overall"``), and closes the
HTTP response. A failed attempt's timeout is transient: ``fallback`` and
``retry_on_error`` go on with the next attempt, and when every one fails,
:class:`~streamkit.AllFailedError` lists each attempt's timeout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from reactivex import Observable

from streamkit._models import Chunk
from streamkit._timeout_watch import checked_seconds, timeout

__all__ = ["Deadlines"]

T = TypeVar("T")


def _seconds(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0 seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Deadlines:
    """A time budget: ``headers``, ``first_chunk``, ``idle`` and ``total`` seconds
    (each ``None`` for no limit). See the module documentation for where each holds.

    Raises ``TypeError``/``ValueError`` for a value that is not a positive, finite
    number of seconds.
    """

    headers: float | None = None
    first_chunk: float | None = None
    idle: float | None = None
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("headers", "first_chunk", "idle", "total"):
            object.__setattr__(self, name, _seconds(name, getattr(self, name)))

    def bound(self, scope: str = "attempt") -> Callable[[Observable[T]], Observable[T]]:
        """An operator applying ``first_chunk``, ``idle`` and ``total`` to each
        subscription of its source (``headers`` is not its to apply: ``sk.stream``
        times the request itself); its errors carry ``scope`` (``"attempt"`` or
        ``"overall"``)."""
        counts: Callable[[Any], bool] = _carries_output
        steps: list[Callable[[Observable[T]], Observable[T]]] = []
        if self.first_chunk is not None:
            steps.append(
                timeout(
                    "first chunk",
                    checked_seconds(self.first_chunk),
                    None,
                    idle=False,
                    scope=scope,
                    counts=counts,
                )
            )
        if self.idle is not None:
            steps.append(timeout("idle", checked_seconds(self.idle), None, idle=True, scope=scope))
        if self.total is not None:
            steps.append(
                timeout(
                    "total", checked_seconds(self.total), None, idle=False, total=True, scope=scope
                )
            )

        def bound_(source: Observable[T]) -> Observable[T]:
            for step in steps:
                source = step(source)
            return source

        return bound_


def _carries_output(item: Any) -> bool:
    """Whether a chunk carries output (anything else, as a non-chunk item, counts)."""
    if not isinstance(item, Chunk):
        return True
    return bool(
        item.content
        or item.thinking
        or item.refusal
        or item.tool_calls
        or item.audio
        or item.audio_transcript
    )
