"""The run plan of ``bench/run.py``: the sizes of a run (full or ``--quick``) and the
clients it measures, table by table. ``run.py`` runs it, ``_report.py`` writes it up;
both import it, neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass


# -- what is measured -------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one run (``--quick`` scales everything down)."""

    table_chunks: int  # burst table, and the short end of the flatness test
    paced_chunks: int
    pace: float  # seconds between events in paced mode
    rounds: int  # reads per client per mode (one per round)
    ttfc_chunks: int
    ttfc_reads: int  # per round
    long_chunks: int  # the long end of the flatness test
    long_rounds: int
    long_budget: float  # seconds of long reads per client (at least one read)
    memory_chunks: int
    memory_samples: int
    match_chunks: int
    match_at: int
    match_pace: float
    match_reads: int
    concurrent_streams: int
    concurrent_chunks: int
    concurrent_pace: float
    concurrent_stagger: float
    concurrent_clients: tuple[str, ...]
    profile_chunks: int


FULL = Plan(
    table_chunks=2_000,
    paced_chunks=400,
    pace=0.001,
    rounds=5,
    ttfc_chunks=30,
    ttfc_reads=4,
    long_chunks=60_000,
    long_rounds=3,
    long_budget=45.0,
    memory_chunks=1_000_000,
    memory_samples=20,
    match_chunks=300,
    match_at=50,
    match_pace=0.01,
    match_reads=5,
    concurrent_streams=1_000,
    concurrent_chunks=30,
    concurrent_pace=0.5,
    concurrent_stagger=4.0,
    concurrent_clients=(
        "openai-async",
        "sk-async-source",
        "sk-async-pipeline",
        "sk-fast-async-pipeline",
    ),
    profile_chunks=10_000,
)
QUICK = Plan(
    table_chunks=1_000,
    paced_chunks=150,
    pace=0.001,
    rounds=3,
    ttfc_chunks=30,
    ttfc_reads=3,
    long_chunks=10_000,
    long_rounds=1,
    long_budget=10.0,
    memory_chunks=100_000,
    memory_samples=10,
    match_chunks=120,
    match_at=30,
    match_pace=0.01,
    match_reads=2,
    concurrent_streams=200,
    concurrent_chunks=10,
    concurrent_pace=0.5,
    concurrent_stagger=1.0,
    concurrent_clients=("openai-async", "sk-async-pipeline"),
    profile_chunks=3_000,
)


@dataclass(frozen=True)
class Client:
    """One row of the tables: a client of ``_clients.CLIENTS`` and what it is compared to."""

    name: str
    label: str
    baseline: str | None  # the raw SDK row it is a ratio to (None: it is one)
    provider: str = "openai"
    kind: str = "streamkit"  # "raw", "streamkit", "fast", "default", "share", "peer"
    # a peer's short name and the streamkit rows it is set against: the realistic
    # pipeline and the fast path's (same provider, sync or async as the peer)
    short: str = ""
    versus: tuple[str, str] = ("sk-pipeline", "sk-fast-pipeline")


TABLE = (
    Client(
        "openai-sync",
        "openai SDK, sync: `for chunk in client.chat.completions.create(stream=True)`",
        None,
        kind="raw",
    ),
    Client(
        "openai-sync-control",
        "the same raw openai loop again, in another process (the noise floor)",
        "openai-sync",
        kind="raw",
    ),
    Client(
        "openai-async",
        "openai SDK, async: `async for chunk in await client.chat.completions.create(...)`",
        None,
        kind="raw",
    ),
    Client(
        "anthropic-sync",
        "anthropic SDK, sync: `for event in client.messages.create(stream=True)`",
        None,
        "anthropic",
        kind="raw",
    ),
    Client(
        "sk-source",
        "streamkit `fast=False` source alone: `sk.stream(...).subscribe(...)`",
        "openai-sync",
    ),
    Client(
        "sk-iter",
        "streamkit `fast=False` iteration: `for chunk, tool in sk.stream(...)` (folds the totals)",
        "openai-sync",
    ),
    Client(
        "sk-pipeline",
        "streamkit `fast=False` realistic pipeline: `take_until_match` (never matching) + "
        "`accumulate` + `do_action(render)` + `to_call_response`",
        "openai-sync",
    ),
    Client("sk-async-source", "streamkit `fast=False` source alone, async client", "openai-async"),
    Client(
        "sk-async-pipeline",
        "streamkit `fast=False` realistic pipeline, async client",
        "openai-async",
    ),
    Client(
        "sk-anthropic-source",
        "streamkit `fast=False` source alone, anthropic",
        "anthropic-sync",
        "anthropic",
    ),
    Client(
        "sk-anthropic-pipeline",
        "streamkit `fast=False` realistic pipeline, anthropic",
        "anthropic-sync",
        "anthropic",
    ),
    # sk.stream(...) as a user calls it, no fast=: the fast path since it became the
    # default (the rows above say fast=False: the SDK path they have always measured)
    Client(
        "sk-default-pipeline",
        "streamkit default realistic pipeline (no `fast=`: the fast path)",
        "openai-sync",
        kind="default",
    ),
    Client(
        "sk-default-async-pipeline",
        "streamkit default realistic pipeline (no `fast=`: the fast path), async client",
        "openai-async",
        kind="default",
    ),
    Client(
        "sk-default-anthropic-pipeline",
        "streamkit default realistic pipeline (no `fast=`: the fast path), anthropic",
        "anthropic-sync",
        "anthropic",
        kind="default",
    ),
    Client(
        "sk-default-anthropic-async-pipeline",
        "streamkit default realistic pipeline (no `fast=`: the fast path), anthropic async client",
        "anthropic-async",
        "anthropic",
        kind="default",
    ),
    Client("sk-fast-source", "streamkit `fast=True` source alone", "openai-sync", kind="fast"),
    Client(
        "sk-fast-pipeline", "streamkit `fast=True` realistic pipeline", "openai-sync", kind="fast"
    ),
    Client(
        "sk-fast-async-source",
        "streamkit `fast=True` source alone, async client",
        "openai-async",
        kind="fast",
    ),
    Client(
        "sk-fast-async-pipeline",
        "streamkit `fast=True` realistic pipeline, async client",
        "openai-async",
        kind="fast",
    ),
    Client(
        "anthropic-async",
        "anthropic SDK, async: `async for event in await client.messages.create(...)`",
        None,
        "anthropic",
        kind="raw",
    ),
    Client(
        "sk-anthropic-async-source",
        "streamkit `fast=False` source alone, anthropic async client",
        "anthropic-async",
        "anthropic",
    ),
    Client(
        "sk-anthropic-async-pipeline",
        "streamkit `fast=False` realistic pipeline, anthropic async client",
        "anthropic-async",
        "anthropic",
    ),
    Client(
        "anthropic-bytes",
        "anthropic SDK's request, the response's bytes only (no SSE, no JSON): the floor",
        "anthropic-sync",
        "anthropic",
        kind="raw",
    ),
    Client(
        "sk-fast-anthropic-source",
        "streamkit `fast=True` source alone, anthropic",
        "anthropic-sync",
        "anthropic",
        kind="fast",
    ),
    Client(
        "sk-fast-anthropic-pipeline",
        "streamkit `fast=True` realistic pipeline, anthropic",
        "anthropic-sync",
        "anthropic",
        kind="fast",
    ),
    Client(
        "sk-fast-anthropic-async-source",
        "streamkit `fast=True` source alone, anthropic async client",
        "anthropic-async",
        "anthropic",
        kind="fast",
    ),
    Client(
        "sk-fast-anthropic-async-pipeline",
        "streamkit `fast=True` realistic pipeline, anthropic async client",
        "anthropic-async",
        "anthropic",
        kind="fast",
    ),
    Client(
        "groq-sync",
        "groq SDK, sync: `for chunk in client.chat.completions.create(stream=True)`",
        None,
        "groq",
        kind="raw",
    ),
    Client(
        "groq-async",
        "groq SDK, async: `async for chunk in await client.chat.completions.create(...)`",
        None,
        "groq",
        kind="raw",
    ),
    Client(
        "groq-bytes",
        "groq SDK's request, the response's bytes only (no SSE, no JSON): the floor",
        "groq-sync",
        "groq",
        kind="raw",
    ),
    Client("sk-groq-source", "streamkit `fast=False` source alone, groq", "groq-sync", "groq"),
    Client(
        "sk-fast-groq-source",
        "streamkit `fast=True` source alone, groq",
        "groq-sync",
        "groq",
        kind="fast",
    ),
    Client(
        "sk-fast-groq-pipeline",
        "streamkit `fast=True` realistic pipeline, groq",
        "groq-sync",
        "groq",
        kind="fast",
    ),
    Client(
        "sk-fast-groq-async-source",
        "streamkit `fast=True` source alone, groq async client",
        "groq-async",
        "groq",
        kind="fast",
    ),
    Client(
        "mistral-sync",
        "mistralai SDK, sync: `for event in client.chat.stream(...)`",
        None,
        "mistral",
        kind="raw",
    ),
    Client(
        "mistral-async",
        "mistralai SDK, async: `async for event in await client.chat.stream_async(...)`",
        None,
        "mistral",
        kind="raw",
    ),
    Client(
        "mistral-bytes",
        "mistralai SDK's request, the response's bytes only (no SSE, no JSON): the floor",
        "mistral-sync",
        "mistral",
        kind="raw",
    ),
    Client(
        "sk-mistral-source",
        "streamkit `fast=False` source alone, mistral",
        "mistral-sync",
        "mistral",
    ),
    Client(
        "sk-fast-mistral-source",
        "streamkit `fast=True` source alone, mistral",
        "mistral-sync",
        "mistral",
        kind="fast",
    ),
    Client(
        "sk-fast-mistral-pipeline",
        "streamkit `fast=True` realistic pipeline, mistral",
        "mistral-sync",
        "mistral",
        kind="fast",
    ),
    Client(
        "sk-fast-mistral-async-source",
        "streamkit `fast=True` source alone, mistral async client",
        "mistral-async",
        "mistral",
        kind="fast",
    ),
    Client("sk-share-1", "streamkit `share_replay`, 1 subscriber", "openai-sync", kind="share"),
    Client("sk-share-10", "streamkit `share_replay`, 10 subscribers", "openai-sync", kind="share"),
    Client(
        "sk-share-100", "streamkit `share_replay`, 100 subscribers", "openai-sync", kind="share"
    ),
    Client(
        "litellm",
        "LiteLLM `completion(stream=True)`",
        "openai-sync",
        kind="peer",
        short="LiteLLM",
    ),
    Client(
        "langchain",
        "LangChain `ChatOpenAI.stream`",
        "openai-sync",
        kind="peer",
        short="LangChain",
    ),
    Client(
        "mirascope",
        "Mirascope v2 `model.stream(...).text_stream()`",
        "openai-sync",
        kind="peer",
        short="Mirascope v2",
    ),
    Client(
        "pydantic-ai",
        "pydantic-ai `OpenAIChatModel`, async: `agent.run_stream(...)` + "
        "`stream_text(delta=True, debounce_by=None)`",
        "openai-async",
        kind="peer",
        short="pydantic-ai (OpenAI)",
        versus=("sk-async-pipeline", "sk-fast-async-pipeline"),
    ),
    Client(
        "pydantic-ai-anthropic",
        "pydantic-ai `AnthropicModel`, async: `agent.run_stream(...)` + "
        "`stream_text(delta=True, debounce_by=None)`",
        "anthropic-async",
        "anthropic",
        kind="peer",
        short="pydantic-ai (Anthropic)",
        versus=("sk-anthropic-async-pipeline", "sk-fast-anthropic-async-pipeline"),
    ),
    Client(
        "openai-helper",
        "openai SDK's helper: `client.chat.completions.stream(...)`, its `content.delta` events",
        "openai-sync",
        kind="peer",
        short="openai's `chat.completions.stream`",
    ),
    Client(
        "anthropic-helper",
        "anthropic SDK's helper: `client.messages.stream(...).text_stream`",
        "anthropic-sync",
        "anthropic",
        kind="peer",
        short="anthropic's `messages.stream().text_stream`",
        versus=("sk-anthropic-pipeline", "sk-fast-anthropic-pipeline"),
    ),
)
BY_NAME = {client.name: client for client in TABLE}
PEERS = tuple(c.name for c in TABLE if c.kind == "peer")
# The flatness test's long stream is an openai one; the peers added for issue 17 are
# left out of it (their flatness is no target, and each long read costs tens of seconds).
LONG = (
    "openai-sync",
    "sk-source",
    "sk-pipeline",
    "sk-fast-pipeline",
    "litellm",
    "langchain",
    "mirascope",
)
TTFC = (
    "openai-sync",
    "openai-async",
    "anthropic-sync",
    "anthropic-async",  # the baseline of pydantic-ai's Anthropic row
    "sk-source",
    "sk-pipeline",
    "sk-async-source",
    "sk-async-pipeline",
    "sk-anthropic-pipeline",
    "sk-anthropic-async-pipeline",
    "sk-default-pipeline",
    "sk-default-async-pipeline",
    "sk-default-anthropic-pipeline",
    "sk-fast-source",
    "sk-fast-pipeline",
    "sk-share-10",
    *PEERS,
)
MATCH_CLIENTS = (
    ("match-direct-sync", "`take_until_match`, sync client"),
    ("match-direct-async", "`take_until_match`, async client"),
    ("match-shared-sync", "`share_replay` + 2 \u00d7 `take_until_match`, sync client"),
    ("match-shared-async", "`share_replay` + 2 \u00d7 `take_until_match`, async client"),
    ("match-raw-sync", "raw openai SDK, `break` + `close()` (reference), sync"),
    ("match-raw-async", "raw openai SDK, `break` + `close()` (reference), async"),
)


@dataclass(frozen=True)
class Scenario:
    """A part of the run that ``bench/run.py --scenario NAME`` runs alone: some rows of
    the CPU table (and the raw SDK rows they are set against), written to a section of
    ``docs/performance.md`` of their own (the rest of the page is left as it is)."""

    name: str
    title: str
    clients: tuple[str, ...]
    modes: tuple[str, ...] = ("burst",)
    intro: str = ""


SCENARIOS = {
    "fast-paths": Scenario(
        "fast-paths",
        "Fast paths of anthropic, groq and mistral (`fast=True`)",
        (
            "sk-fast-anthropic-source",
            "sk-fast-anthropic-pipeline",
            "sk-fast-anthropic-async-source",
            "sk-anthropic-source",
            "anthropic-bytes",
            "sk-fast-groq-source",
            "sk-fast-groq-pipeline",
            "sk-fast-groq-async-source",
            "sk-groq-source",
            "groq-bytes",
            "sk-fast-mistral-source",
            "sk-fast-mistral-pipeline",
            "sk-fast-mistral-async-source",
            "sk-mistral-source",
            "mistral-bytes",
        ),
        intro=(
            '`sk.stream("anthropic" | "groq" | "mistral", ..., fast=True)` reads the SDK\'s '
            "own HTTP response, splits its server-sent events itself, decodes each with "
            "orjson and builds the SDK's event object only if `chunk.chunk` is read "
            "(`streamkit/providers/_stainless.py`; mistralai, not a Stainless SDK, in "
            "`streamkit/providers/mistral/fast.py`). The goal (issue 17): at least 3\u00d7 "
            "less CPU per chunk than iterating each raw SDK. The `bytes only` rows read the "
            "same responses through the same SDK request without parsing anything: no "
            "reader of that response can cost less, so they bound the speed-up any fast "
            "path can reach on this stream. mistralai's own cost per event is mostly "
            "pydantic building a model class (its `utils.unmarshal` calls `create_model` for "
            "every event, cProfile: about 60 % of its time): the fast path skips it unless "
            "`chunk.chunk` is read, which then costs what the SDK pays for that event."
        ),
    ),
    "sdk-path": Scenario(
        "sdk-path",
        "The SDK path (`fast=False`) and the default against each raw SDK (issue 17: at "
        "most 1.05\u00d7)",
        (
            "openai-sync-control",
            "sk-source",
            "sk-pipeline",
            "sk-async-source",
            "sk-async-pipeline",
            "sk-anthropic-source",
            "sk-anthropic-pipeline",
            "sk-anthropic-async-source",
            "sk-anthropic-async-pipeline",
            "sk-default-pipeline",
            "sk-default-async-pipeline",
            "sk-default-anthropic-pipeline",
            "sk-default-anthropic-async-pipeline",
        ),
        modes=("burst", "paced"),
        intro=(
            "`sk.stream(..., fast=False)`: streamkit iterates the SDK's own stream and maps "
            "each SDK object to a chunk. `sk.stream(...)` with no `fast=` (the default rows) "
            "takes the fast path wherever it can run, as here. The goal (issue 17): the "
            "realistic pipeline at most 1.05\u00d7 the raw SDK's CPU per chunk, burst and "
            "paced, sync and async, for OpenAI and Anthropic. The control row is the raw "
            "openai loop again in another process: the noise floor of this run. Where each "
            "microsecond goes: the profile-round2 section."
        ),
    ),
}
"""The scenarios ``bench/run.py --scenario`` runs alone, by name."""
