"""The fault matrix: what is tried, and what each cell must show.

A cell is one fault x one provider x sync or async x one pipeline. Each runs the
provider's official SDK client against a :class:`~streamkit.testing.ReplayServer`
that breaks one recorded stream with the fault (:class:`~streamkit.testing.Fault`),
through ``sk.stream(...).pipe(ops.first_chunk_timeout(..), ops.idle_timeout(..), ...)``.

The expected outcome of a cell is derived here, from the fault and the provider only
(never from what streamkit did): either success with the whole text, or a named typed
error with the text delivered before the fault (exactly, or as a prefix where the
transport may drop buffered bytes). ``take_until_match`` succeeds when its phrase is
complete before the fault strikes; ``retry_on_error`` recovers from transient faults
(its second attempt meets a different fault, its third none) and passes other errors
on after one request.

The oracle for text is :func:`streamkit.testing.replay.event_text`, a reader of the raw
wire JSON that shares nothing with streamkit's decoders.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import product

import streamkit as sk
from streamkit import ops
from streamkit.providers import get_adapter
from streamkit.testing import Fault, load_transcript
from streamkit.testing.replay import event_text

FULL_MATRIX_ENV = "STREAMKIT_FULL_MATRIX"
"""Set to ``1`` to run every cell; by default a pairwise-covering subset runs."""

PACE = 0.001
"""Seconds between events: enough for a client to read each event before a cut."""

STALL = 5.0
"""How long a stall fault lasts. A cell never waits it out: the library's timeout
fires first and closes the connection, which ends the stall on the server."""

SHORT_TIMEOUT = 0.3
"""``first_chunk_timeout`` / ``idle_timeout`` in stall cells."""

GUARD_TIMEOUT = 5.0
"""``first_chunk_timeout`` / ``idle_timeout`` in every other cell: never reached, it
only bounds a cell if something stalls unexpectedly."""

LARGE_EVENT = 2_000_000
"""Characters of text in the large event (2 MB on the wire)."""

TRICKLE = (0.00001, 3000)
"""``(seconds between bytes, bytes trickled)``: the first events byte by byte."""

RETRY_AFTER = 0.05
"""The ``retry-after`` (seconds) of the 429 reply; ``retry_on_error`` must honor it."""

MODEL = "replayed-model"

SETTLE = 2.0
"""Seconds a leak check waits for things to wind down before it fails."""


def settle(condition: Callable[[], bool], timeout: float = SETTLE) -> bool:
    """Wait until ``condition()`` holds (``True``) or ``timeout`` passes (``False``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# -- providers -------------------------------------------------------------------------
@dataclass(frozen=True)
class ProviderCase:
    """One provider's stream in the matrix.

    ``at``: mid-stream faults strike after this many of the transcript's events (some
    text has arrived by then). ``phrase``: what ``take_until_match`` looks for; it is
    completed only after event ``at``, so a fault strikes before the match.
    """

    name: str
    sdk_module: str
    transcript: str
    at: int
    phrase: str

    def missing(self) -> str | None:
        """Why this provider cannot run here, or ``None``."""
        if self.name not in sk.PROVIDERS:
            return f"streamkit has no {self.name!r} adapter yet"
        if importlib.util.find_spec(self.sdk_module.split(".")[0]) is None:
            return f"the {self.sdk_module} SDK is not installed"
        try:
            get_adapter(self.name)
        except ImportError as error:
            return f"the {self.name} adapter does not import: {error}"
        return None


PROVIDER_CASES: tuple[ProviderCase, ...] = (
    ProviderCase("openai", "openai", "openai/chat-text-usage", 4, "4242"),
    ProviderCase("anthropic", "anthropic", "anthropic/messages-tool-result-followup", 4, "Moria"),
    ProviderCase("mistral", "mistralai", "mistral/chat-text-usage", 6, "trace all"),
    ProviderCase("groq", "groq", "groq/chat-text-x-groq-usage", 6, "therapy"),
    ProviderCase("google", "google.genai", "google/gemini-text", 1, "**4242**"),
    ProviderCase("cohere", "cohere", "cohere/chat-v2-text-usage", 6, "pirate-style"),
    # litellm over its OpenAI route (the openai SDK underneath), and azure-ai-inference:
    # both are answered with the recorded OpenAI chat stream.
    ProviderCase("litellm", "litellm", "openai/chat-text-usage", 4, "4242"),
    ProviderCase("azure", "azure.ai.inference", "openai/chat-text-usage", 4, "4242"),
)
PROVIDER_BY_NAME = {case.name: case for case in PROVIDER_CASES}


# -- faults ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FaultCase:
    """One row of the matrix: a fault placed relative to a provider's ``at``."""

    key: str
    title: str
    make: Callable[[ProviderCase], Fault]
    stall: bool = False


FAULT_CASES: tuple[FaultCase, ...] = (
    FaultCase(
        "close",
        "connection closed mid-body (FIN)",
        lambda p: Fault(close_after_events=p.at),
    ),
    FaultCase("reset", "connection reset (RST)", lambda p: Fault(reset_after_events=p.at)),
    FaultCase(
        "stall_first",
        f"stall before the first event ({STALL:g} s)",
        lambda p: Fault(stall_before=STALL),
        stall=True,
    ),
    FaultCase(
        "stall_mid",
        f"stall mid-stream ({STALL:g} s)",
        lambda p: Fault(stall_after_events=(p.at, STALL)),
        stall=True,
    ),
    FaultCase(
        "end_early",
        "body ends without the terminal event",
        lambda p: Fault(end_after_events=p.at),
    ),
    FaultCase(
        "broken_json",
        "an event with broken JSON",
        lambda p: Fault(malformed=(p.at, "broken_json")),
    ),
    FaultCase(
        "unknown_event",
        "an event of an unknown type",
        lambda p: Fault(malformed=(p.at, "unknown_event")),
    ),
    FaultCase(
        "foreign_event",
        "an event of another provider",
        lambda p: Fault(malformed=(p.at, "foreign_event")),
    ),
    FaultCase(
        "http_429",
        f"HTTP 429, retry-after {RETRY_AFTER:g}",
        lambda p: Fault(http_error=429, headers={"retry-after": str(RETRY_AFTER)}),
    ),
    FaultCase("http_500", "HTTP 500", lambda p: Fault(http_error=500)),
    FaultCase("http_503", "HTTP 503", lambda p: Fault(http_error=503)),
    FaultCase("http_529", "HTTP 529 (overloaded)", lambda p: Fault(http_error=529)),
    FaultCase(
        "error_event",
        "mid-stream error event (overloaded)",
        lambda p: Fault(error_event_after=p.at),
    ),
    FaultCase(
        "large_event",
        f"one {LARGE_EVENT // 1_000_000} MB event",
        lambda p: Fault(large_event=LARGE_EVENT),
    ),
    FaultCase(
        "trickle",
        "slow trickle, one byte at a time",
        lambda p: Fault(trickle=TRICKLE[0], trickle_bytes=TRICKLE[1]),
    ),
)
FAULT_BY_KEY = {case.key: case for case in FAULT_CASES}


def second_attempt_fault(first: FaultCase, provider: ProviderCase) -> Fault:
    """The fault the second attempt of a recovering retry cell meets: a cut at ``at``
    (a reset when the first was a close), so a retry meets a different fault than the
    first attempt, and must match what it re-sends against what was delivered."""
    if first.key == "close":
        return Fault(reset_after_events=provider.at)
    return Fault(close_after_events=provider.at)


# -- expected outcomes -----------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What a single request under a fault must end with, as a subscriber sees it.

    ``errors`` empty: success, the whole text. Otherwise one of ``errors`` (dotted
    names, resolved lazily so an SDK is imported only when its cells run), carrying
    HTTP ``status`` if given; ``transient`` says whether ``retry_on_error`` retries
    it; ``exact``: the text received equals what the server sent before the fault
    (else only a prefix of it: a reset may drop bytes the client had not read).
    """

    errors: tuple[str, ...] = ()
    status: int | None = None
    transient: bool = False
    exact: bool = True
    note: str = ""

    @property
    def ok(self) -> bool:
        """Whether the request succeeds."""
        return not self.errors

    def label(self) -> str:
        """A short name for the doc: ``ok`` or the error class names."""
        if self.ok:
            return "ok"
        names = " / ".join(name.rsplit(".", 1)[-1] for name in self.errors)
        return f"{names} {self.status}" if self.status else names

    def error_types(self) -> tuple[type[BaseException], ...]:
        """The classes named in ``errors``."""
        return tuple(_resolve(name) for name in self.errors)


def _resolve(dotted: str) -> type[BaseException]:
    module, _, name = dotted.rpartition(".")
    value = getattr(importlib.import_module(module), name)
    assert isinstance(value, type) and issubclass(value, BaseException), dotted
    return value


INCOMPLETE = "streamkit.IncompleteStreamError"
TIMEOUT = "streamkit.StreamTimeoutError"

# The SDK's exception for an HTTP error status, per provider (each carries the status in
# ``status_code``, google's in ``code``): one class for every status, or one per status.
HTTP_ERRORS: dict[str, str | dict[int, str]] = {
    "openai": "openai.APIStatusError",
    "anthropic": "anthropic.APIStatusError",
    "mistral": "mistralai.client.errors.SDKError",
    "groq": "groq.APIStatusError",
    "google": "google.genai.errors.APIError",
    "cohere": "cohere.core.api_error.ApiError",
    # litellm maps the openai SDK's status error to a class per status
    # (litellm_core_utils/exception_mapping_utils.py, its OpenAI branch): 429 by the
    # error's status or "rate limit" text, 500 and 503 by status, and any other status
    # (529) to its generic APIError carrying it. No common base but openai.APIError.
    "litellm": {
        429: "litellm.exceptions.RateLimitError",
        500: "litellm.exceptions.InternalServerError",
        503: "litellm.exceptions.ServiceUnavailableError",
        529: "litellm.exceptions.APIError",
    },
    # azure-core's map_error turns only 401/404/409/304 into subclasses; every other
    # status is the HttpResponseError that azure-ai-inference raises itself.
    "azure": "azure.core.exceptions.HttpResponseError",
}


def http_error(provider: str, status: int) -> str:
    """The SDK's exception class (dotted) for an HTTP ``status`` reply to ``provider``."""
    errors = HTTP_ERRORS[provider]
    return errors if isinstance(errors, str) else errors[status]


# What each SDK raises for its provider's mid-stream error event.
ERROR_EVENT_ERRORS = {
    "openai": Outcome(("openai.APIError",), transient=True),
    "anthropic": Outcome(("anthropic.APIStatusError",), transient=True),
    "groq": Outcome(("groq.APIError",), transient=True),
    "mistral": Outcome(
        ("mistralai.client.errors.ResponseValidationError",),
        transient=True,
        note="mistralai validates the error event as a chunk and raises its "
        "ResponseValidationError; streamkit classifies it by the error it carries",
    ),
    "google": Outcome(("google.genai.errors.ServerError",), status=503, transient=True),
    "cohere": Outcome(
        (INCOMPLETE,),
        transient=True,
        note="cohere's SDK skips an event type it does not know (Cohere documents no "
        "error event), so the stream ends without message-end",
    ),
    "litellm": Outcome(
        ("litellm.exceptions.MidStreamFallbackError",),
        transient=True,
        note="litellm maps the openai SDK's APIError for the error event, as any error "
        "while it reads a stream, to an APIConnectionError (status 500) wrapped in "
        "MidStreamFallbackError; streamkit classifies it by the APIError's type "
        "(server_error: transient)",
    ),
    "azure": Outcome(
        (INCOMPLETE,),
        transient=True,
        note="azure-ai-inference drops an update with neither choices nor usage, so the "
        "error event is never yielded and the stream ends without a finish reason",
    ),
}

# What each SDK does with an event whose JSON is cut.
BROKEN_JSON = {
    "openai": Outcome(("json.JSONDecodeError",)),
    "anthropic": Outcome(("json.JSONDecodeError",)),
    "groq": Outcome(("json.JSONDecodeError",)),
    "mistral": Outcome(("mistralai.client.errors.ResponseValidationError",)),
    "google": Outcome(("google.genai.errors.UnknownApiResponseError",)),
    "cohere": Outcome(note="cohere's SDK logs the unparsable event and skips it"),
    "litellm": Outcome(
        ("litellm.exceptions.MidStreamFallbackError",),
        note="litellm maps the openai SDK's JSONDecodeError to an APIConnectionError "
        "(status 500) wrapped in MidStreamFallbackError; streamkit passes it on, not "
        "transient, as it does the JSONDecodeError itself (not a cut stream)",
    ),
    "azure": Outcome(("json.JSONDecodeError",)),
}

# What each SDK does with an event of another provider.
FOREIGN_EVENT = {
    "openai": Outcome(note="no choices: nothing to decode"),
    "anthropic": Outcome(note="the SDK skips an event without an event: line"),
    "groq": Outcome(note="no choices: nothing to decode"),
    "mistral": Outcome(("mistralai.client.errors.ResponseValidationError",)),
    "google": Outcome(("google.genai.errors.UnknownApiResponseError",)),
    "cohere": Outcome(note="the SDK skips an event type it does not know"),
    "litellm": Outcome(note="no choices: nothing to decode"),
    "azure": Outcome(
        ("builtins.ValueError",),
        note="azure-ai-inference accepts only data: lines and raises ValueError (SSE "
        "event not supported) on the event: line of the Anthropic event",
    ),
}


def expected_outcome(fault: FaultCase, provider: ProviderCase) -> Outcome:
    """What one request of ``provider``'s stream under ``fault`` ends with."""
    key, name = fault.key, provider.name
    if key in ("close", "end_early"):
        return Outcome((INCOMPLETE,), transient=True)
    if key == "reset":
        return Outcome(
            (INCOMPLETE,),
            transient=True,
            exact=False,
            note="or the transport's error if no event was read before the RST",
        )
    if fault.stall:
        return Outcome((TIMEOUT,), transient=True)
    if key.startswith("http_"):
        status = int(key[5:])
        return Outcome((http_error(name, status),), status=status, transient=True)
    if key == "error_event":
        return ERROR_EVENT_ERRORS[name]
    if key == "broken_json":
        return BROKEN_JSON[name]
    if key == "foreign_event":
        return FOREIGN_EVENT[name]
    if key == "large_event" and name == "cohere":
        return Outcome(
            ("cohere.core.http_sse._exceptions.SSEError",),
            note="cohere's SDK refuses an SSE line over 1 MiB",
        )
    return Outcome()


def strike_index(fault: FaultCase, provider: ProviderCase, events: Sequence[str]) -> int | None:
    """Index of the first event (of those sent) the client never gets as text because of
    the fault; ``None`` when the fault does not stop the stream."""
    if expected_outcome(fault, provider).ok:
        return None
    if fault.key.startswith("http_") or fault.key == "stall_first":
        return 0
    if fault.key in ("broken_json", "foreign_event"):
        return provider.at  # the malformed event's position among those sent
    if fault.key == "large_event":
        return _first_text_index(events, load_transcript(provider.transcript).api) + 1
    return min(provider.at, len(events))


def _first_text_index(events: Sequence[str], api: str) -> int:
    return next(i for i, event in enumerate(events) if event_text(event, api))


# -- known gaps -------------------------------------------------------------------------
KNOWN_GAPS: dict[tuple[str, str, str], str] = {}
"""Cells (fault, provider, mode) known to leak: each runs, must show the leak (xfail),
and fails as soon as the leak is gone, so the entry gets removed."""


# -- pipelines -------------------------------------------------------------------------
PIPELINES: tuple[str, ...] = ("reduce", "take_until_match", "share_replay", "retry_on_error")
PIPELINE_OPERATORS = {
    "reduce": ("to_call_response",),
    "take_until_match": ("take_until_match",),
    "share_replay": ("share_replay",),
    "retry_on_error": ("retry_on_error",),
}
TIMEOUT_OPERATORS = ("first_chunk_timeout", "idle_timeout")
MODES: tuple[str, ...] = ("sync", "async")
SUBSCRIBERS = 3
"""Subscribers of a ``share_replay`` cell (the third joins late)."""


def missing_operators(pipeline: str) -> list[str]:
    """The ``ops`` this pipeline needs that do not exist yet."""
    needed = (*TIMEOUT_OPERATORS, *PIPELINE_OPERATORS[pipeline])
    return [name for name in needed if getattr(ops, name, None) is None]


# -- cells -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One cell of the matrix."""

    fault: FaultCase
    provider: ProviderCase
    mode: str
    pipeline: str

    @property
    def id(self) -> str:
        """The pytest id: ``fault-provider-mode-pipeline``."""
        return f"{self.fault.key}-{self.provider.name}-{self.mode}-{self.pipeline}"

    @property
    def async_(self) -> bool:
        """Whether the cell uses the SDK's async client."""
        return self.mode == "async"

    def known_gap(self) -> str | None:
        """Why this cell is known to leak, or ``None``."""
        return KNOWN_GAPS.get((self.fault.key, self.provider.name, self.mode))

    def skip_reason(self) -> str | None:
        """Why the cell cannot run here (a missing adapter, SDK or operator)."""
        missing = self.provider.missing()
        if missing is not None:
            return missing
        absent = missing_operators(self.pipeline)
        if absent:
            return f"ops.{', ops.'.join(absent)} not built yet"
        return None

    def attempts(self) -> list[Fault | None]:
        """The fault of each request, in order (``None``: a clean reply)."""
        first = self.fault.make(self.provider)
        if self.pipeline != "retry_on_error":
            return [first]
        return [first, second_attempt_fault(self.fault, self.provider), None]

    def sent_events(self, fault: Fault | None) -> list[str]:
        """The events the server sends for one request (before any cut)."""
        transcript = load_transcript(self.provider.transcript)
        return (fault or Fault()).events_for(transcript)

    def text_of(self, events: Sequence[str]) -> str:
        """The answer text in raw ``events`` (the oracle)."""
        api = load_transcript(self.provider.transcript).api
        return "".join(event_text(event, api) for event in events)

    def expectation(self) -> Expectation:
        """What this cell must show."""
        first = self.fault.make(self.provider)
        outcome = expected_outcome(self.fault, self.provider)
        events = self.sent_events(first)
        strike = strike_index(self.fault, self.provider, events)
        delivered = self.text_of(events if strike is None else events[:strike])
        if self.pipeline == "retry_on_error" and outcome.transient:
            return Expectation(Outcome(), self.text_of(self.sent_events(None)), requests=3)
        if self.pipeline == "take_until_match":
            match_end = _match_end(self.text_of, events, self.provider.phrase)
            if match_end is not None and (strike is None or match_end < strike):
                return Expectation(Outcome(), self.text_of(events[: match_end + 1]), requests=1)
        return Expectation(outcome, delivered, requests=1)


@dataclass(frozen=True)
class Expectation:
    """A cell's expected outcome, the text it must deliver (whole on success, before
    the fault on error) and the number of requests the server must see."""

    outcome: Outcome
    text: str
    requests: int


def _match_end(
    text_of: Callable[[Sequence[str]], str], events: Sequence[str], phrase: str
) -> int | None:
    """Index of the event that completes ``phrase`` in the text, or ``None``."""
    for end in range(len(events)):
        if phrase in text_of(events[: end + 1]):
            return end
    return None


def all_cells() -> list[Cell]:
    """Every fault x provider x mode x pipeline."""
    return [
        Cell(fault, provider, mode, pipeline)
        for fault, provider, mode, pipeline in product(
            FAULT_CASES, PROVIDER_CASES, MODES, PIPELINES
        )
    ]


def pairwise_cells() -> list[Cell]:
    """A subset in which every pair of values of two dimensions (fault and provider,
    fault and pipeline, provider and mode, ...) occurs at least once.

    Greedy, deterministic: take the cell that covers the most pairs not covered yet,
    among those the one whose values were chosen least so far (so sync and async, and
    the pipelines, get even shares), until every pair is covered. One cell of each
    known gap is taken first, so the default run still checks every gap (its xfail
    fails once the gap is closed) and the generated page lists it.
    """
    candidates = all_cells()
    uncovered = set().union(*(_pairs(cell) for cell in candidates))
    uses: Counter[str] = Counter()
    chosen: list[Cell] = []

    def take_best(among: list[Cell]) -> None:
        nonlocal uncovered
        ranks = [
            (len(_pairs(cell) & uncovered), -sum(uses[value] for value in _values(cell)))
            for cell in among
        ]
        best = among[ranks.index(max(ranks))]  # the first of equal ranks
        chosen.append(best)
        uses.update(_values(best))
        uncovered -= _pairs(best)

    for gap in KNOWN_GAPS:
        take_best([c for c in candidates if (c.fault.key, c.provider.name, c.mode) == gap])
    while uncovered:
        take_best(candidates)
    return chosen


def _values(cell: Cell) -> list[str]:
    return [
        f"fault={cell.fault.key}",
        f"provider={cell.provider.name}",
        f"mode={cell.mode}",
        f"pipeline={cell.pipeline}",
    ]


def _pairs(cell: Cell) -> set[tuple[str, str]]:
    values = _values(cell)
    return {(a, b) for i, a in enumerate(values) for b in values[i + 1 :]}


def selected_cells() -> list[Cell]:
    """The cells this run covers: all with ``STREAMKIT_FULL_MATRIX=1``, else pairwise."""
    if os.environ.get(FULL_MATRIX_ENV) == "1":
        return all_cells()
    return pairwise_cells()


def cells_for(mode: str) -> Iterator[Cell]:
    """The selected cells of one mode."""
    return (cell for cell in selected_cells() if cell.mode == mode)


def describe(cell: Cell) -> str:
    """One JSON line naming the cell, attached to its test report (see conftest)."""
    return json.dumps(
        {
            "fault": cell.fault.key,
            "provider": cell.provider.name,
            "mode": cell.mode,
            "pipeline": cell.pipeline,
        }
    )
