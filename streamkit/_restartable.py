"""What ``ops.retry_on_error`` and ``ops.fallback`` need of a provider stream.

The operators depend on this protocol, not on ``streamkit._stream``: operators stand
above the core, and ``sk.Stream`` is simply one class that satisfies it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from reactivex import Observable

from streamkit._models import Chunk

__all__ = ["RestartableStream"]


@runtime_checkable
class RestartableStream(Protocol):
    """A cold ``Observable[Chunk]`` of one provider's model that can classify its errors
    and continue a cut answer (``sk.Stream`` is one).

    The operators check it with ``isinstance``, which only looks for these members.
    """

    provider: str
    """The provider's name, as ``sk.stream`` takes it (names the call's span)."""

    model_name: str
    """The model asked for (names the call's span)."""

    def is_transient(self, error: BaseException) -> bool:
        """Whether a new request may succeed after ``error`` (the provider's view)."""
        ...

    def continuation(self, delivered: str) -> Observable[Chunk]:
        """A new cold source asking the model to continue an answer cut after ``delivered``."""
        ...
