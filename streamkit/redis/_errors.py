"""Typed errors a follower or producer of a Redis stream gets instead of a gap or a hang."""

from __future__ import annotations

from streamkit._errors import StreamError

__all__ = [
    "ProducerError",
    "ProducerLostError",
    "RedisStreamError",
    "RedisUnavailableError",
    "StreamGapError",
    "StreamNotFoundError",
]


class RedisStreamError(StreamError):
    """Base of the errors of :mod:`streamkit.redis`; ``key`` is the stream's key."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


class StreamNotFoundError(RedisStreamError):
    """No stream under the key and no producer holding its lease."""

    def __init__(self, key: str) -> None:
        super().__init__(key, f"no stream and no active producer at {key!r}")


class StreamGapError(RedisStreamError):
    """Entries the follower needs are gone (trimmed by ``maxlen``, expired, or the stream
    was replaced): it fell behind retention. Never a silent gap."""

    def __init__(self, key: str, after: str, got: str | None) -> None:
        self.after = after
        self.got = got
        found = "nothing" if got is None else f"entry {got}"
        super().__init__(
            key,
            f"stream {key!r} no longer holds the entries after {after} (found {found}): "
            "the follower fell behind retention",
        )


class ProducerLostError(RedisStreamError):
    """The producer's lease expired before it wrote a terminal entry (it died)."""

    def __init__(self, key: str) -> None:
        super().__init__(
            key, f"the producer of {key!r} stopped renewing its lease without finishing"
        )


class ProducerError(RedisStreamError):
    """The producer's stream failed; ``error_type`` and ``message`` are its error's."""

    def __init__(self, key: str, error_type: str | None, message: str | None) -> None:
        self.error_type = error_type
        self.message = message
        super().__init__(key, f"the producer of {key!r} failed: {error_type}: {message}")


class RedisUnavailableError(RedisStreamError):
    """Redis did not answer for ``seconds`` while reading or writing the stream."""

    def __init__(self, key: str, seconds: float, cause: BaseException) -> None:
        self.seconds = seconds
        super().__init__(
            key, f"redis unreachable for {seconds:g} s on {key!r}: {type(cause).__name__}"
        )
