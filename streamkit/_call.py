"""The ``@call`` decorator of the Mirascope-compatible call API."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec

from streamkit._models import CallResponse
from streamkit._stream import Stream, UsageCallback, reduce_async, reduce_sync
from streamkit.providers import get_adapter

__all__ = ["call"]

P = ParamSpec("P")
Prompt = str | Sequence[Mapping[str, Any]]


def call(
    provider: str,
    model: str,
    *,
    stream: bool = False,
    client: Any = None,
    on_usage: UsageCallback | None = None,
    **params: Any,
) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """Turn a function that returns a prompt into an LLM call.

    The decorated function returns the prompt: a string or a list of messages. With
    ``stream=True`` calling it returns a :class:`Stream`; with ``stream=False`` a
    :class:`CallResponse` reduced from the same stream. An ``async def`` function gives
    an async stream (``stream = await fn(...)``; ``async for chunk, tool in stream``).

    ``on_usage`` is called exactly once per request a call makes, when it ends on any
    path (completed, stopped early, timed out, failed), with its
    :class:`~streamkit.UsageReport` (see :func:`~streamkit.stream`).

    Bad arguments (an unknown provider, a client of the wrong kind, an ``on_usage`` that
    is not callable) raise at decoration.
    """
    adapter = get_adapter(provider)
    if not isinstance(model, str) or not model:
        raise TypeError(f"model must be a non-empty string, not {model!r}")
    if on_usage is not None and not callable(on_usage):
        raise TypeError(f"on_usage must be callable, not {type(on_usage).__name__}")

    def decorator(fn: Callable[P, Any]) -> Callable[P, Any]:
        is_async = inspect.iscoroutinefunction(fn)
        client_is_async = None if client is None else adapter.is_async_client(client)
        if client_is_async is not None and client_is_async != is_async:
            kind, want = ("async", "an async client") if is_async else ("sync", "a sync client")
            raise TypeError(f"{fn.__qualname__} is {kind}: give it {want}")

        if is_async:

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Stream | CallResponse:
                prompt: Prompt = await fn(*args, **kwargs)
                result = Stream(
                    provider,
                    model,
                    prompt,
                    client=client,
                    async_=True,
                    on_usage=on_usage,
                    **params,
                )
                return result if stream else await reduce_async(result)

            return async_wrapper

        @functools.wraps(fn)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> Stream | CallResponse:
            prompt: Prompt = fn(*args, **kwargs)
            result = Stream(
                provider, model, prompt, client=client, async_=False, on_usage=on_usage, **params
            )
            return result if stream else reduce_sync(result)

        return sync_wrapper

    return decorator
