"""The clients measured: each ``make_<name>(url)`` sets one up (client objects, event
loop) and returns a function that reads one whole stream and returns how many items it
saw. Set-up is never measured; the returned function is, again and again.

``tap``: every maker also takes ``tap=`` (a function called with each item a client
sees, for the time-to-first-text measure). Without one, the loops are exactly the plain
counting loops below: :func:`_tapped` hands back the SDK's own iterator, so the CPU
figures carry no probe.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import

KEY = "sk-streamkit-test-key"
MODEL = "gpt-4o"
MESSAGES = [{"role": "user", "content": "Tell me a long story."}]
NEVER = "this text never appears in the stream"

Run = Callable[[], int]
Tap = Callable[[Any], None] | None


def _tapped(items: Iterable[Any], tap: Tap) -> Iterable[Any]:
    """``items`` itself without a tap (nothing added to the measured loop)."""
    if tap is None:
        return items

    def tapping() -> Iterator[Any]:
        for item in items:
            tap(item)
            yield item

    return tapping()


def _atapped(items: AsyncIterable[Any], tap: Tap) -> AsyncIterable[Any]:
    if tap is None:
        return items

    async def tapping() -> AsyncIterator[Any]:
        async for item in items:
            tap(item)
            yield item

    return tapping()


def has_text(item: Any) -> bool:
    """Whether an item of any client carries text: an SDK chunk or event, a streamkit
    chunk or snapshot, a LangChain message chunk, a Mirascope, pydantic-ai or SDK
    helper text piece, an openai stream helper event."""
    if isinstance(item, str):
        return bool(item)
    if isinstance(item, tuple):  # streamkit's iteration: (chunk, tool call)
        item = item[0]
    choices = getattr(item, "choices", None)
    if choices:  # openai / litellm chat chunk
        delta = getattr(choices[0], "delta", None)
        return bool(getattr(delta, "content", None))
    kind = getattr(item, "type", None)
    if kind == "content_block_delta":  # anthropic event
        return bool(getattr(item.delta, "text", None))
    if kind == "content.delta":  # the openai SDK's stream helper
        return bool(item.delta)
    content = getattr(item, "content", None)
    return isinstance(content, str) and bool(content)


def _openai(url: str, async_: bool = False) -> Any:
    import openai

    cls = openai.AsyncOpenAI if async_ else openai.OpenAI
    return cls(base_url=url + "/v1", api_key=KEY, max_retries=0)


def _anthropic(url: str, async_: bool = False) -> Any:
    import anthropic

    cls = anthropic.AsyncAnthropic if async_ else anthropic.Anthropic
    return cls(base_url=url, api_key=KEY, max_retries=0)


def _groq(url: str, async_: bool = False) -> Any:
    import groq

    cls = groq.AsyncGroq if async_ else groq.Groq
    return cls(base_url=url, api_key=KEY, max_retries=0)


def _mistral(url: str, async_: bool = False) -> Any:
    # One client class for both: ``async_`` only says which methods the caller uses.
    from mistralai.client import Mistral
    from mistralai.client.utils.retries import BackoffStrategy, RetryConfig

    no_retries = RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False)
    return Mistral(api_key=KEY, server_url=url, retry_config=no_retries)


ANTHROPIC_MODEL = "claude-sonnet-4-20250514"
GROQ_MODEL = "llama3-8b-8192"
MISTRAL_MODEL = "mistral-tiny"


# -- raw SDKs ---------------------------------------------------------------------------
def make_openai_sync(url: str, *, tap: Tap = None) -> Run:
    client = _openai(url)

    def run() -> int:
        n = 0
        stream = client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        for _chunk in _tapped(stream, tap):
            n += 1
        return n

    return run


def make_openai_async(url: str, *, tap: Tap = None) -> Run:
    client = _openai(url, async_=True)
    loop = asyncio.new_event_loop()

    async def read() -> int:
        n = 0
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _chunk in _atapped(stream, tap):
            n += 1
        return n

    return lambda: loop.run_until_complete(read())


def make_anthropic_sync(url: str, *, tap: Tap = None) -> Run:
    client = _anthropic(url)

    def run() -> int:
        n = 0
        stream = client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=1024, messages=MESSAGES, stream=True
        )
        for _event in _tapped(stream, tap):
            n += 1
        return n

    return run


def make_anthropic_async(url: str, *, tap: Tap = None) -> Run:
    client = _anthropic(url, async_=True)
    loop = asyncio.new_event_loop()

    async def read() -> int:
        n = 0
        stream = await client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=1024, messages=MESSAGES, stream=True
        )
        async for _event in _atapped(stream, tap):
            n += 1
        return n

    return lambda: loop.run_until_complete(read())


def make_groq_sync(url: str, *, tap: Tap = None) -> Run:
    client = _groq(url)

    def run() -> int:
        n = 0
        stream = client.chat.completions.create(model=GROQ_MODEL, messages=MESSAGES, stream=True)
        for _chunk in _tapped(stream, tap):
            n += 1
        return n

    return run


def make_groq_async(url: str, *, tap: Tap = None) -> Run:
    client = _groq(url, async_=True)
    loop = asyncio.new_event_loop()

    async def read() -> int:
        n = 0
        stream = await client.chat.completions.create(
            model=GROQ_MODEL, messages=MESSAGES, stream=True
        )
        async for _chunk in _atapped(stream, tap):
            n += 1
        return n

    return lambda: loop.run_until_complete(read())


def make_anthropic_bytes(url: str, *, tap: Tap = None) -> Run:
    """The floor of any reader: the SDK's own request, its response's bytes read and
    nothing parsed (``messages.with_streaming_response``)."""
    client = _anthropic(url)

    def run() -> int:
        n = 0
        with client.messages.with_streaming_response.create(
            model=ANTHROPIC_MODEL, max_tokens=1024, messages=MESSAGES, stream=True
        ) as response:
            for _piece in response.iter_bytes():
                n += 1
        return n

    return run


def make_groq_bytes(url: str, *, tap: Tap = None) -> Run:
    """The floor of any groq reader (see :func:`make_anthropic_bytes`)."""
    client = _groq(url)

    def run() -> int:
        n = 0
        with client.chat.completions.with_streaming_response.create(
            model=GROQ_MODEL, messages=MESSAGES, stream=True
        ) as response:
            for _piece in response.iter_bytes():
                n += 1
        return n

    return run


def make_mistral_sync(url: str, *, tap: Tap = None) -> Run:
    client = _mistral(url)

    def run() -> int:
        n = 0
        stream = client.chat.stream(model=MISTRAL_MODEL, messages=MESSAGES)
        for _event in _tapped(stream, tap):
            n += 1
        return n

    return run


def make_mistral_async(url: str, *, tap: Tap = None) -> Run:
    client = _mistral(url, async_=True)
    loop = asyncio.new_event_loop()

    async def read() -> int:
        n = 0
        stream = await client.chat.stream_async(model=MISTRAL_MODEL, messages=MESSAGES)
        async for _event in _atapped(stream, tap):
            n += 1
        return n

    return lambda: loop.run_until_complete(read())


def make_mistral_bytes(url: str, *, tap: Tap = None) -> Run:
    """The floor of any mistralai reader: the SDK's own request (``chat.stream``), its
    response's bytes read and nothing parsed (the event stream is never iterated)."""
    client = _mistral(url)

    def run() -> int:
        n = 0
        stream = client.chat.stream(model=MISTRAL_MODEL, messages=MESSAGES)
        try:
            for _piece in stream.response.iter_bytes():
                n += 1
        finally:
            stream.close()
        return n

    return run


# -- streamkit --------------------------------------------------------------------------
def _subscribe_and_wait(observable: Any, tap: Tap = None) -> int:
    """Subscribe, count items, block until the stream ends (errors re-raised)."""
    done = threading.Event()
    count = 0
    failure: list[Exception] = []

    def on_next(_item: Any) -> None:
        nonlocal count
        count += 1

    def on_next_tapped(item: Any) -> None:
        nonlocal count
        count += 1
        tap(item)  # type: ignore[misc]

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    observable.subscribe(on_next if tap is None else on_next_tapped, on_error, done.set)
    done.wait()
    if failure:
        raise failure[0]
    return count


async def _subscribe_and_await(observable: Any, tap: Tap = None) -> int:
    """The async form of :func:`_subscribe_and_wait` (on the running loop)."""
    done = asyncio.Event()
    count = 0
    failure: list[Exception] = []

    def on_next(item: Any) -> None:
        nonlocal count
        count += 1
        if tap is not None:
            tap(item)

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    observable.subscribe(on_next, on_error, done.set)
    await done.wait()
    if failure:
        raise failure[0]
    return count


def _render(_snapshot: Any) -> None:
    """What a UI does with each snapshot (nothing here: only the pipeline is measured)."""


def realistic(stream: Any, tap: Tap = None) -> Any:
    """``take_until_match`` (never matching) + ``accumulate`` + ``to_call_response``:
    a UI's snapshots (``do_action``) and the final response from one request, folded
    once (``to_call_response`` ends a pipeline of snapshots with the last one's).

    ``tap`` (time to first text) is the UI's render: the first text a user sees is the
    first snapshot rendered, not the response ``to_call_response`` emits at the end."""
    from reactivex import operators as rx_ops

    from streamkit import ops

    return stream.pipe(
        ops.take_until_match(NEVER),
        ops.accumulate(),
        rx_ops.do_action(_render if tap is None else tap),
        ops.to_call_response(),
    )


def flat(stream: Any) -> Any:
    """A pipeline that accumulates nothing: ``take_until_match`` (never matching), then
    each chunk's text (``ops.text``): what a UI printing deltas runs."""
    from streamkit import ops

    return stream.pipe(ops.take_until_match(NEVER), ops.text())


def _sk_factory(
    url: str,
    provider: str = "openai",
    async_: bool = False,
    as_default: bool = False,
    **params: Any,
) -> Callable[[], Any]:
    """A new stream per call. ``as_default``: ``sk.stream`` as a user calls it, with no
    ``fast=`` (the fast path where it can run, since it became the default); else
    ``fast=False`` unless ``params`` say otherwise: the rows named without ``fast`` have
    always measured the SDK path, and still do."""
    import streamkit as sk

    if not as_default:
        params.setdefault("fast", False)
    clients = {"openai": _openai, "anthropic": _anthropic, "groq": _groq, "mistral": _mistral}
    client = clients[provider](url, async_)
    if provider == "anthropic":
        params.setdefault("max_tokens", 1024)
    if provider == "mistral" and async_:
        params.setdefault("async_", True)  # one client class: the stream asks for async
    models = {"openai": MODEL, "anthropic": ANTHROPIC_MODEL, "groq": GROQ_MODEL}
    model = models.get(provider, MISTRAL_MODEL)
    return lambda: sk.stream(provider, model, MESSAGES, client=client, **params)


def make_sk_source(url: str, *, tap: Tap = None, **params: Any) -> Run:
    new_stream = _sk_factory(url, **params)
    return lambda: _subscribe_and_wait(new_stream(), tap)


def make_sk_iter(url: str, *, tap: Tap = None, **params: Any) -> Run:
    new_stream = _sk_factory(url, **params)

    def run() -> int:
        n = 0
        for _chunk, _tool in _tapped(new_stream(), tap):
            n += 1
        return n

    return run


def make_sk_pipeline(url: str, *, tap: Tap = None, **params: Any) -> Run:
    new_stream = _sk_factory(url, **params)
    return lambda: _subscribe_and_wait(realistic(new_stream(), tap))


def _set_fusion(fused: bool | None) -> None:
    """Fuse streamkit's operators (the default) or not, in this process (for
    ``bench/bench_fusion.py``); ``None`` leaves the default."""
    if fused is None:
        return
    from streamkit.ops import _fusion

    _fusion.ENABLED = fused


def make_sk_stages(
    url: str, *, stages: int, fused: bool | None = None, tap: Tap = None, **params: Any
) -> Run:
    """The source and ``stages`` operators after it, each a ``take_until_match`` that
    never matches (a stage that passes every chunk on after reading its text)."""
    from streamkit import ops

    _set_fusion(fused)
    new_stream = _sk_factory(url, **params)

    def run() -> int:
        operators = [ops.take_until_match(NEVER) for _ in range(stages)]
        return _subscribe_and_wait(new_stream().pipe(*operators), tap)

    return run


def make_sk_pipeline_fusion(url: str, *, fused: bool, tap: Tap = None, **params: Any) -> Run:
    """The realistic pipeline with fusion on or off."""
    _set_fusion(fused)
    return make_sk_pipeline(url, tap=tap, **params)


def make_sk_share(url: str, subscribers: int, *, tap: Tap = None, **params: Any) -> Run:
    from streamkit import ops

    new_stream = _sk_factory(url, **params)

    def run() -> int:
        shared = new_stream().pipe(ops.share_replay())
        remaining = threading.Semaphore(0)
        counts = [0] * subscribers

        def subscriber(i: int) -> None:
            def on_next(_chunk: Any) -> None:
                counts[i] += 1

            def on_next_tapped(chunk: Any) -> None:
                counts[i] += 1
                tap(chunk)  # type: ignore[misc]

            def on_end(*_args: Any) -> None:
                remaining.release()

            tapped = tap is not None and i == 0
            shared.subscribe(on_next_tapped if tapped else on_next, on_end, on_end)

        for i in range(subscribers):
            subscriber(i)
        for _ in range(subscribers):
            remaining.acquire()
        return counts[0]

    return run


def make_sk_async(url: str, *, pipeline: bool = False, tap: Tap = None, **params: Any) -> Run:
    """An async client's stream, subscribed on a running loop (the source alone, or
    the realistic pipeline)."""
    new_stream = _sk_factory(url, async_=True, **params)
    loop = asyncio.new_event_loop()

    async def read() -> int:
        stream = new_stream()
        if pipeline:
            return await _subscribe_and_await(realistic(stream, tap))
        return await _subscribe_and_await(stream, tap)

    return lambda: loop.run_until_complete(read())


# -- peers ------------------------------------------------------------------------------
def make_litellm(url: str, *, tap: Tap = None) -> Run:
    import litellm

    def run() -> int:
        n = 0
        response = litellm.completion(
            model=f"openai/{MODEL}",
            messages=MESSAGES,
            stream=True,
            api_base=url + "/v1",
            api_key=KEY,
            max_retries=0,
            stream_options={"include_usage": True},
        )
        for _chunk in _tapped(response, tap):
            n += 1
        return n

    return run


def make_langchain(url: str, *, tap: Tap = None) -> Run:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        model=MODEL, base_url=url + "/v1", api_key=KEY, max_retries=0, stream_usage=True
    )

    def run() -> int:
        n = 0
        for _chunk in _tapped(model.stream(MESSAGES), tap):
            n += 1
        return n

    return run


def make_mirascope(url: str, *, tap: Tap = None) -> Run:
    from mirascope import llm

    # Mirascope looks the provider up in a global registry by model id at every call: a
    # model id (and scope) of its own per server keeps each stream on its own URL.
    model_id = f"openai/{MODEL}-bench-{url.rsplit(':', 1)[-1]}"
    llm.register_provider("openai", scope=model_id, api_key=KEY, base_url=url + "/v1")
    model = llm.Model(f"{model_id}:completions")  # the chat-completions endpoint

    def run() -> int:
        n = 0
        response = model.stream(MESSAGES[0]["content"])
        for _text in _tapped(response.text_stream(), tap):
            n += 1
        return n

    return run


def make_openai_helper(url: str, *, tap: Tap = None) -> Run:
    """The openai SDK's own streaming helper: ``client.chat.completions.stream(...)``,
    its ``content.delta`` events (it also folds the chunks into a snapshot as it goes)."""
    client = _openai(url)

    def run() -> int:
        n = 0
        with client.chat.completions.stream(
            model=MODEL, messages=MESSAGES, stream_options={"include_usage": True}
        ) as stream:
            for event in _tapped(stream, tap):
                if event.type == "content.delta":
                    n += 1
        return n

    return run


def make_anthropic_helper(url: str, *, tap: Tap = None) -> Run:
    """The anthropic SDK's own streaming helper: ``messages.stream(...).text_stream``."""
    client = _anthropic(url)

    def run() -> int:
        n = 0
        with client.messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=1024, messages=MESSAGES
        ) as stream:
            for _text in _tapped(stream.text_stream, tap):
                n += 1
        return n

    return run


def make_pydantic_ai(
    url: str, *, tap: Tap = None, provider: str = "openai", debounce: float | None = None
) -> Run:
    """pydantic-ai's agent streaming with its OpenAI chat model (or its Anthropic model):
    ``agent.run_stream`` then ``stream_text(delta=True)``. Async (``run_stream_sync``
    runs this same async code behind a bridge to a loop). ``debounce`` None hands over
    every delta as it arrives, as every other row does; it is also the cheaper setting:
    pydantic-ai's default, 0.1 s, groups the deltas but still parses each, and cost
    more CPU per chunk here (313 against 294 µs, 2,000-delta openai burst, when this
    row was added)."""
    from pydantic_ai import Agent

    model: Any
    if provider == "anthropic":
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        client = AnthropicProvider(anthropic_client=_anthropic(url, async_=True))
        model = AnthropicModel(ANTHROPIC_MODEL, provider=client)
    else:
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        model = OpenAIChatModel(
            MODEL, provider=OpenAIProvider(openai_client=_openai(url, async_=True))
        )
    agent = Agent(model)
    loop = asyncio.new_event_loop()

    async def read() -> int:
        n = 0
        async with agent.run_stream(MESSAGES[0]["content"]) as result:
            texts = result.stream_text(delta=True, debounce_by=debounce)
            async for _text in _atapped(texts, tap):
                n += 1
        return n

    return lambda: loop.run_until_complete(read())


def _client(make: Callable[..., Run], **fixed: Any) -> Callable[..., Run]:
    return lambda url, tap=None: make(url, tap=tap, **fixed)


CLIENTS: dict[str, Callable[..., Run]] = {
    "openai-sync": make_openai_sync,
    "openai-sync-control": make_openai_sync,  # the same again: the table's noise floor
    "openai-async": make_openai_async,
    "anthropic-sync": make_anthropic_sync,
    "sk-source": make_sk_source,
    "sk-iter": make_sk_iter,
    "sk-pipeline": make_sk_pipeline,
    "sk-async-source": _client(make_sk_async),
    "sk-async-pipeline": _client(make_sk_async, pipeline=True),
    "sk-fast-source": _client(make_sk_source, fast=True),
    "sk-fast-iter": _client(make_sk_iter, fast=True),
    "sk-fast-pipeline": _client(make_sk_pipeline, fast=True),
    "sk-fast-async-source": _client(make_sk_async, fast=True),
    "sk-fast-async-pipeline": _client(make_sk_async, pipeline=True, fast=True),
    # sk.stream's default (no fast=): the fast path since it became the default
    "sk-default-pipeline": _client(make_sk_pipeline, as_default=True),
    "sk-default-async-pipeline": _client(make_sk_async, pipeline=True, as_default=True),
    "sk-default-anthropic-pipeline": _client(
        make_sk_pipeline, provider="anthropic", as_default=True
    ),
    "sk-default-anthropic-async-pipeline": _client(
        make_sk_async, pipeline=True, provider="anthropic", as_default=True
    ),
    "sk-anthropic-source": _client(make_sk_source, provider="anthropic"),
    "sk-anthropic-pipeline": _client(make_sk_pipeline, provider="anthropic"),
    "anthropic-async": make_anthropic_async,
    "sk-anthropic-async-source": _client(make_sk_async, provider="anthropic"),
    "sk-anthropic-async-pipeline": _client(make_sk_async, pipeline=True, provider="anthropic"),
    "anthropic-bytes": make_anthropic_bytes,
    "groq-bytes": make_groq_bytes,
    "groq-sync": make_groq_sync,
    "groq-async": make_groq_async,
    "sk-groq-source": _client(make_sk_source, provider="groq"),
    "sk-fast-anthropic-source": _client(make_sk_source, provider="anthropic", fast=True),
    "sk-fast-anthropic-pipeline": _client(make_sk_pipeline, provider="anthropic", fast=True),
    "sk-fast-anthropic-async-source": _client(make_sk_async, provider="anthropic", fast=True),
    "sk-fast-anthropic-async-pipeline": _client(
        make_sk_async, pipeline=True, provider="anthropic", fast=True
    ),
    "sk-fast-groq-source": _client(make_sk_source, provider="groq", fast=True),
    "sk-fast-groq-pipeline": _client(make_sk_pipeline, provider="groq", fast=True),
    "sk-fast-groq-async-source": _client(make_sk_async, provider="groq", fast=True),
    "mistral-bytes": make_mistral_bytes,
    "mistral-sync": make_mistral_sync,
    "mistral-async": make_mistral_async,
    "sk-mistral-source": _client(make_sk_source, provider="mistral"),
    "sk-fast-mistral-source": _client(make_sk_source, provider="mistral", fast=True),
    "sk-fast-mistral-pipeline": _client(make_sk_pipeline, provider="mistral", fast=True),
    "sk-fast-mistral-async-source": _client(make_sk_async, provider="mistral", fast=True),
    "sk-share-1": _client(make_sk_share, subscribers=1),
    "sk-share-10": _client(make_sk_share, subscribers=10),
    "sk-share-100": _client(make_sk_share, subscribers=100),
    "sk-share-1000": _client(make_sk_share, subscribers=1000),  # bench_fanout.py
    "sk-fast-share-1": _client(make_sk_share, subscribers=1, fast=True),  # bench_fanout.py
    "sk-fast-share-100": _client(make_sk_share, subscribers=100, fast=True),
    "sk-fast-share-1000": _client(make_sk_share, subscribers=1000, fast=True),
    # bench_fusion.py: fused and unfused streamkit operators
    "sk-pipeline-fused": _client(make_sk_pipeline_fusion, fused=True),
    "sk-pipeline-unfused": _client(make_sk_pipeline_fusion, fused=False),
    **{
        f"sk-stages-{count}-{kind}": _client(make_sk_stages, stages=count, fused=kind == "fused")
        for count in (1, 2, 4, 8, 16)
        for kind in ("fused", "unfused")
    },
    "litellm": make_litellm,
    "langchain": make_langchain,
    "mirascope": make_mirascope,
    "pydantic-ai": make_pydantic_ai,
    "pydantic-ai-anthropic": _client(make_pydantic_ai, provider="anthropic"),
    "openai-helper": make_openai_helper,
    "anthropic-helper": make_anthropic_helper,
}
"""Every client by name: ``CLIENTS[name](url, tap=None)`` returns its run function."""


# -- early termination ------------------------------------------------------------------
def make_match(url: str, *, mode: str, async_: bool, pattern: str) -> Run:
    """A stream cut at the first match of ``pattern`` (one event carries it):

    - ``direct``: ``take_until_match`` on the stream;
    - ``shared``: the stream behind ``share_replay``, two subscribers (a UI and a
      logger) each with their own ``take_until_match``; the request ends when the
      second one leaves;
    - ``raw``: the raw openai SDK, ``break`` at the first text containing the
      pattern, then ``close()`` (what a careful user of the bare SDK writes).

    Returns the number of items the (first) subscriber received.
    """
    from streamkit import ops

    if mode == "raw":
        client = _openai(url, async_)
        if not async_:

            def run_raw() -> int:
                n = 0
                with client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, stream=True
                ) as stream:
                    for chunk in stream:
                        n += 1
                        if chunk.choices and pattern in (chunk.choices[0].delta.content or ""):
                            break
                return n

            return run_raw
        loop = asyncio.new_event_loop()

        async def read_raw() -> int:
            n = 0
            stream = await client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True
            )
            async with stream:
                async for chunk in stream:
                    n += 1
                    if chunk.choices and pattern in (chunk.choices[0].delta.content or ""):
                        break
            return n

        return lambda: loop.run_until_complete(read_raw())

    new_stream = _sk_factory(url, async_=async_)

    def observables() -> list[Any]:
        stream = new_stream()
        if mode == "direct":
            return [stream.pipe(ops.take_until_match(pattern))]
        shared = stream.pipe(ops.share_replay())
        return [shared.pipe(ops.take_until_match(pattern)) for _ in range(2)]

    if not async_:

        def run() -> int:
            # Every subscriber is in place before the first chunk can arrive (the
            # source starts on its own thread), as in a UI wiring its views.
            ended = threading.Semaphore(0)
            counts: list[int] = []
            for observable in observables():
                counts.append(0)
                index = len(counts) - 1

                def on_next(_item: Any, index: int = index) -> None:
                    counts[index] += 1

                def on_end(*_args: Any) -> None:
                    ended.release()

                observable.subscribe(on_next, on_end, on_end)
            for _ in counts:
                ended.acquire()
            return counts[0]

        return run
    loop = asyncio.new_event_loop()

    async def read() -> int:
        counts = await asyncio.gather(*(_subscribe_and_await(o) for o in observables()))
        return counts[0]

    return lambda: loop.run_until_complete(read())


def _match_client(mode: str, async_: bool) -> Callable[..., Run]:
    def make(url: str, tap: Tap = None) -> Run:
        from _streams import MATCH_TEXT

        return make_match(url, mode=mode, async_=async_, pattern=MATCH_TEXT)

    return make


for _mode in ("direct", "shared", "raw"):
    for _async in (False, True):
        CLIENTS[f"match-{_mode}-{'async' if _async else 'sync'}"] = _match_client(_mode, _async)
