"""What a stream's usage costs: prices from ``genai-prices`` (extra ``[cost]``), or yours.

``genai-prices`` (Pydantic's maintained price data, bundled with the package: no
network) prices input, cached input, output and audio tokens per provider and model.
:func:`register` sets a price of your own for a model (a negotiated rate, a fine-tune,
a local model), which wins over the library's; :func:`cost_of` with ``price=`` prices one
call. An unknown model gives a :class:`Cost` whose ``amount`` is ``None`` and whose
``reason`` says why, never a guess.

Reasoning tokens are billed as output by every provider that reports them (they are
part of ``output_tokens``), so they are priced at the output rate.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from streamkit._models import Usage, UsageSource
from streamkit.providers import provider_entry

__all__ = ["Cost", "Price", "cost_of", "register", "unregister"]

MILLION = Decimal(1_000_000)


def _genai_prices_id(provider: str) -> str | None:
    """genai-prices' provider id for a streamkit provider (its registry name), or
    ``None``: genai-prices finds the provider from the model name (litellm's
    ``"provider/model"`` names, a provider streamkit does not know)."""
    entry = provider_entry(provider)
    if entry is None or entry.prices_by_model_name:
        return None
    return entry.name


# Providers whose reported input tokens exclude cache reads (the rest include them).
_INPUT_EXCLUDES_CACHE = frozenset({"anthropic"})


@dataclass(frozen=True)
class Price:
    """A price in USD per million tokens. ``cached_input`` / ``audio_input`` /
    ``audio_output`` default to the plain input / output rate."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    audio_input: Decimal | None = None
    audio_output: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input", "audio_input", "audio_output"):
            value = getattr(self, name)
            if value is None and name not in ("input", "output"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
                raise TypeError(f"{name} must be a number of USD per million tokens, not {value!r}")
            number = Decimal(str(value))
            if not number.is_finite() or number < 0:
                raise ValueError(f"{name} must be a finite price >= 0, got {value!r}")
            object.__setattr__(self, name, number)


@dataclass(frozen=True)
class Cost:
    """The cost of a usage, in USD.

    ``amount`` is ``None`` when it cannot be known (no usage, an unknown model, the
    ``[cost]`` extra not installed); ``reason`` then says why. ``usage_source`` is the
    priced usage's source: a cost of ``estimated`` usage is an estimate too.
    """

    amount: Decimal | None
    input: Decimal | None = None
    output: Decimal | None = None
    currency: str = "USD"
    reason: str | None = None
    usage_source: UsageSource | None = None
    priced_by: Literal["registered", "argument", "genai-prices"] | None = None

    def __add__(self, other: Cost) -> Cost:
        """The cost of both (unknown if either is unknown)."""
        if self.amount is None or other.amount is None:
            return Cost(None, reason=self.reason or other.reason)
        return Cost(
            self.amount + other.amount,
            input=_sum(self.input, other.input),
            output=_sum(self.output, other.output),
            usage_source=self.usage_source if self.usage_source == other.usage_source else "mixed",
            priced_by=self.priced_by if self.priced_by == other.priced_by else None,
        )


def _sum(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else a + b


_registered: dict[tuple[str | None, str], Price] = {}
_lock = threading.Lock()


def register(model: str, price: Price, *, provider: str | None = None) -> None:
    """Use ``price`` for ``model`` (of ``provider``, or of any provider), instead of
    genai-prices' (thread-safe; applies to every cost computed afterwards)."""
    if not isinstance(model, str) or not model:
        raise TypeError(f"model must be a non-empty string, not {model!r}")
    if not isinstance(price, Price):
        raise TypeError(f"price must be an sk.prices.Price, not {type(price).__name__}")
    with _lock:
        _registered[(provider, model)] = price


def unregister(model: str, *, provider: str | None = None) -> None:
    """Forget a price set by :func:`register` (nothing happens if none was)."""
    with _lock:
        _registered.pop((provider, model), None)


def _registered_price(provider: str, model: str) -> Price | None:
    with _lock:
        return _registered.get((provider, model)) or _registered.get((None, model))


def cost_of(
    provider: str,
    model: str | None,
    usage: Usage | None,
    *,
    price: Price | None = None,
    requested: str | None = None,
) -> Cost:
    """The cost of ``usage`` for ``model`` of ``provider``: at ``price`` if given, else a
    :func:`register`-ed price, else genai-prices'.

    ``requested`` is the model name asked for, when the provider reported another
    (``gpt-4o`` answered as ``gpt-4o-2024-08-06``): a price registered for either name
    applies (the reported one first), and genai-prices is asked for the reported name,
    then the requested one.
    """
    if usage is None:
        return Cost(None, reason="no usage to price")
    if price is not None:
        return _at_price(provider, usage, price, "argument")
    names = [name for name in dict.fromkeys((model, requested)) if name]
    if not names:
        return Cost(None, reason="the model is unknown", usage_source=usage.source)
    for name in names:
        registered = _registered_price(provider, name)
        if registered is not None:
            return _at_price(provider, usage, registered, "registered")
    cost = _genai_prices(provider, names[0], usage)
    for name in names[1:]:
        if cost.amount is not None:
            break
        cost = _genai_prices(provider, name, usage)
    return cost


def _split(provider: str, usage: Usage) -> tuple[int, int, int, int, int]:
    """``(uncached text input, cached input, audio input, text output, audio output)``."""
    cached = usage.cached_tokens or 0
    audio_in = usage.audio_input_tokens or 0
    audio_out = usage.audio_output_tokens or 0
    total_input = usage.input_tokens + (cached if provider in _INPUT_EXCLUDES_CACHE else 0)
    plain_input = max(total_input - cached - audio_in, 0)
    return plain_input, cached, audio_in, max(usage.output_tokens - audio_out, 0), audio_out


def _at_price(provider: str, usage: Usage, price: Price, by: Any) -> Cost:
    plain_in, cached, audio_in, text_out, audio_out = _split(provider, usage)
    input_cost = (
        plain_in * price.input
        + cached * (price.cached_input if price.cached_input is not None else price.input)
        + audio_in * (price.audio_input if price.audio_input is not None else price.input)
    ) / MILLION
    output_cost = (
        text_out * price.output
        + audio_out * (price.audio_output if price.audio_output is not None else price.output)
    ) / MILLION
    return Cost(
        input_cost + output_cost,
        input=input_cost,
        output=output_cost,
        usage_source=usage.source,
        priced_by=by,
    )


def _genai_prices(provider: str, model: str, usage: Usage) -> Cost:
    try:
        import genai_prices
    except ImportError:
        return Cost(
            None,
            reason="genai-prices is not installed: pip install 'streamkit[cost]', "
            "or sk.prices.register a price",
            usage_source=usage.source,
        )
    _, cached, audio_in, _, audio_out = _split(provider, usage)
    total_input = usage.input_tokens + (cached if provider in _INPUT_EXCLUDES_CACHE else 0)
    counts: dict[str, int] = {"input_tokens": total_input, "output_tokens": usage.output_tokens}
    if cached:
        counts["cache_read_tokens"] = cached
    if audio_in:
        counts["input_audio_tokens"] = audio_in
    if audio_out:
        counts["output_audio_tokens"] = audio_out
    provider_id = _genai_prices_id(provider)
    try:
        result = genai_prices.calc_price(
            genai_prices.Usage(**counts), model_ref=model, provider_id=provider_id
        )
    except LookupError as error:
        return Cost(
            None,
            reason=f"genai-prices has no price for {model!r} ({error}); sk.prices.register one",
            usage_source=usage.source,
        )
    return Cost(
        Decimal(result.total_price),
        input=Decimal(result.input_price),
        output=Decimal(result.output_price),
        usage_source=usage.source,
        priced_by="genai-prices",
    )
