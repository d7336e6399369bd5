"""streamkit's own errors. Provider errors are re-raised as the SDK's own exceptions."""

from __future__ import annotations

__all__ = [
    "AllFailedError",
    "BudgetError",
    "BudgetExceededError",
    "EndpointError",
    "IncompleteStreamError",
    "MissingAPIKeyError",
    "NotIterableError",
    "StreamDivergedError",
    "StreamError",
    "StreamTimeoutError",
    "UnknownProviderError",
]


class StreamError(Exception):
    """Base of every error streamkit raises itself."""


class UnknownProviderError(StreamError, ValueError):
    """The provider name is not one streamkit knows."""

    def __init__(
        self, provider: object, known: list[str], *, suggestion: str | None = None
    ) -> None:
        self.provider = provider
        self.known = known
        self.suggestion = suggestion
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        super().__init__(
            f"unknown provider {provider!r}; {hint}known providers: {', '.join(known)}"
        )


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
    """A deadline passed: ``kind`` says which (``"headers"``, ``"first chunk"``,
    ``"idle"`` or ``"total"``), ``seconds`` how long it was, and ``scope`` whose it was:
    ``"attempt"`` (a ``sk.stream(..., deadlines=...)`` budget, one request's),
    ``"overall"`` (``ops.deadlines`` after ``fallback``/``retry_on_error``/``hedge``:
    the whole call's) or ``None`` (a timeout operator used on its own)."""

    def __init__(self, kind: str, seconds: float, scope: str | None = None) -> None:
        self.kind = kind
        self.seconds = seconds
        self.scope = scope
        what = {
            "headers": "no response headers",
            "total": "the stream did not end",
        }.get(kind, "no chunk")
        whose = f" ({scope} deadline)" if scope else ""
        super().__init__(f"{kind} timeout{whose}: {what} within {seconds:g} s")


class StreamDivergedError(StreamError):
    """A retried attempt produced text that differs from what was already delivered."""

    def __init__(self, delivered: str, retried: str) -> None:
        self.delivered = delivered
        self.retried = retried
        super().__init__(
            "the retried stream diverged from the text already delivered "
            f"(delivered {len(delivered)} chars, retry produced {len(retried)} chars)"
        )


class MissingAPIKeyError(StreamError, ValueError):
    """No client was given and the provider's API key variable is not set."""

    def __init__(self, provider: str, variables: tuple[str, ...]) -> None:
        self.provider = provider
        self.variables = variables
        names = " or ".join(variables)
        super().__init__(
            f"no API key for {provider}: set {names} in the environment, or pass "
            f"client= (the {provider} SDK's client, built with its key)"
        )


class NotIterableError(StreamError, TypeError):
    """``for``, ``list()`` or ``async for`` over an observable that is not iterable (a
    pipeline, or what a reactivex operator applied to a stream returns): the message
    names the way to iterate it (``stream.iter(...)``, ``sk.iterate(...)``...)."""


class EndpointError(StreamError, ValueError):
    """The provider's endpoint is missing or unusable, found at ``sk.stream`` time: no
    client was given and its variable (azure's ``AZURE_AI_CHAT_ENDPOINT``) is not set or
    not an http(s) URL, or the client given was built with such an endpoint."""


class AllFailedError(StreamError):
    """Every stream of a ``fallback``, ``hedge``, ``race`` or ``best_of`` failed.

    ``errors`` holds each cause, in the order the streams were given; the message
    names each one (by type and a short text).
    """

    def __init__(self, operator: str, errors: list[BaseException]) -> None:
        self.operator = operator
        self.errors = list(errors)
        causes = "; ".join(
            f"{index}: {type(error).__name__}: {_short(error)}"
            for index, error in enumerate(self.errors, 1)
        )
        super().__init__(f"{operator}: all {len(self.errors)} streams failed ({causes})")


def _short(error: BaseException, limit: int = 120) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BudgetError(StreamError):
    """``ops.budget`` cannot let a request run: ``ops.budget(max_cost=...)`` cannot price
    its model (no known price: register one with ``sk.prices.register``), or, as
    :class:`BudgetExceededError`, the budget is already spent. Either way the request
    is not sent."""


class BudgetExceededError(BudgetError):
    """``ops.budget`` refused to send a request, before any HTTP request: the ledger is
    already at its limit, or the request's estimated input alone (with what the budget
    already spent) reaches ``max_cost``.

    ``limit`` is what was reached (``"max_cost"`` or ``"max_output_tokens"``);
    ``spent`` is the USD (for ``max_cost``, the request's estimated input included) or
    output tokens counted against it, ``allowed`` the limit; ``input_tokens`` the
    request's estimated input (``None`` when no request was started).
    """

    def __init__(
        self,
        limit: str,
        spent: object,
        allowed: object,
        *,
        input_tokens: int | None = None,
        why: str,
    ) -> None:
        self.limit = limit
        self.spent = spent
        self.allowed = allowed
        self.input_tokens = input_tokens
        super().__init__(f"ops.budget: no request was sent: {why} ({spent} of {limit}={allowed})")


# Public under the package's name, as httpx does: tracebacks, reprs and the
# ``error.type`` of telemetry say ``streamkit.StreamTimeoutError``, the name users import
# (``streamkit._errors`` is private). Pickling finds them there too.
for _name in __all__:
    globals()[_name].__module__ = "streamkit"
del _name
