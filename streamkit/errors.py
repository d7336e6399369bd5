"""streamkit's own errors. Provider errors are re-raised as the SDK's own exceptions."""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "IncompleteStreamError",
    "StreamDivergedError",
    "StreamError",
    "StreamTimeoutError",
    "UnknownProviderError",
]


class StreamError(Exception):
    """Base of every error streamkit raises itself."""


class UnknownProviderError(StreamError, ValueError):
    """The provider name is not one streamkit knows."""

    def __init__(self, provider: object, known: list[str]) -> None:
        self.provider = provider
        self.known = known
        super().__init__(f"unknown provider {provider!r}; known providers: {', '.join(known)}")


class IncompleteStreamError(StreamError):
    """The stream ended without the provider's terminal event: the response is cut off.

    ``content`` holds the text received before the cut, ``events`` how many events
    arrived.
    """

    def __init__(self, provider: str, expected: str, *, events: int = 0) -> None:
        self.provider = provider
        self.expected = expected
        self.events = events
        super().__init__(
            f"{provider} stream ended after {events} events without its terminal event "
            f"({expected}): the response is incomplete"
        )


class StreamTimeoutError(StreamError, TimeoutError):
    """A chunk did not arrive in time (first chunk or idle timeout)."""

    def __init__(self, kind: str, seconds: float) -> None:
        self.kind = kind
        self.seconds = seconds
        super().__init__(f"{kind} timeout: no chunk within {seconds:g} s")


class StreamDivergedError(StreamError):
    """A retried attempt produced text that differs from what was already delivered."""

    def __init__(self, delivered: str, retried: str) -> None:
        self.delivered = delivered
        self.retried = retried
        super().__init__(
            "the retried stream diverged from the text already delivered "
            f"(delivered {len(delivered)} chars, retry produced {len(retried)} chars)"
        )


class BudgetError(StreamError):
    """``ops.budget(max_cost=...)`` cannot price the stream's model (no known price:
    register one with ``sk.prices.register``)."""
