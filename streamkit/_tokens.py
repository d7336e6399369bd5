"""Token estimates for a stream that stopped before the provider reported its usage.

Output tokens are counted from the text received; input tokens from the request's
messages (and tool definitions). With the provider's tokenizer when one is usable
(tiktoken for OpenAI models, only when its BPE file is already on disk: streamkit never
downloads one), else with :func:`approximate_tokens`, whose error against the providers'
reported figures is measured on the bundled transcripts (``docs/usage-and-cost.md``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "MESSAGE_OVERHEAD",
    "REQUEST_OVERHEAD",
    "approximate_tokens",
    "count_input",
    "count_output",
    "tiktoken_encoding",
]

MESSAGE_OVERHEAD = 4
"""Tokens added per message for its role and separators (OpenAI's published count)."""
REQUEST_OVERHEAD = 3
"""Tokens added once per request (the reply's priming)."""

# A rough pre-tokenizer in the spirit of the BPE ones: a word with its leading space,
# a run of up to three digits, one other symbol, a run of whitespace.
_PIECES = re.compile(r" ?[^\W\d_]+| ?\d{1,3}|\s+|[^\s\w]|_", re.UNICODE)
_LONG_WORD = 8
"""Letters per token in a long word (BPE splits rare long words)."""


def approximate_tokens(text: str) -> int:
    """Tokens in ``text`` without a tokenizer: one per word (a word longer than
    ``_LONG_WORD`` letters counts one per ``_LONG_WORD``), per run of up to three
    digits, per symbol and per run of whitespace. Non-ASCII words count one token per
    two characters (BPE vocabularies hold few of them whole)."""
    count = 0
    for match in _PIECES.finditer(text):
        piece = match.group()
        word = piece.lstrip(" ")
        if not word:
            count += 1
        elif word[0].isalpha():
            if word.isascii():
                count += max(1, math.ceil(len(word) / _LONG_WORD))
            else:
                count += max(1, math.ceil(len(word) / 2))
        else:
            count += 1
    return count


# -- tiktoken, used only when its BPE file is already on disk --------------------------
_TIKTOKEN_FILES = ("o200k_base", "cl100k_base", "p50k_base", "r50k_base")
# Providers (their registry names, as ``Stream.provider``) whose models count with
# OpenAI's encodings; every OpenAI API (chat, Responses, the fast path) is "openai".
_OPENAI_LIKE = frozenset({"openai", "azure", "litellm", "groq"})


def _cached_bpe_exists(name: str) -> bool:
    """Whether tiktoken would find ``name``'s BPE file in its cache (no download)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return False
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    key = hashlib.sha1(url.encode()).hexdigest()
    return os.path.exists(os.path.join(cache_dir, key))


@functools.lru_cache(maxsize=64)
def tiktoken_encoding(model: str | None) -> Any:
    """The tiktoken encoding of an OpenAI ``model``, or ``None``: tiktoken not installed,
    a model it does not know, or a BPE file not on disk (offline, nothing is fetched)."""
    if not model:
        return None
    try:
        import tiktoken
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        return None
    if name not in _TIKTOKEN_FILES or not _cached_bpe_exists(name):
        return None
    try:
        return tiktoken.get_encoding(name)
    except Exception:  # a corrupt cache file, a tiktoken that changed its layout
        return None


def count_output(provider: str, model: str | None, kept: str, chars: int) -> int:
    """Estimated output tokens of ``chars`` characters received, of which ``kept`` is the
    start (all of it, up to a cap): its tokens counted, the rest scaled from them."""
    if not chars:
        return 0
    encoding = tiktoken_encoding(model) if provider in _OPENAI_LIKE else None
    if encoding is not None:
        tokens = len(encoding.encode(kept, disallowed_special=()))
    else:
        tokens = approximate_tokens(kept)
    if kept and len(kept) < chars:
        tokens = math.ceil(tokens * chars / len(kept))
    return tokens


def _texts(value: Any) -> Iterable[str]:
    """Every string in a message's content or a tool definition, depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key in ("role", "type") and isinstance(item, str):
                continue
            if key == "image_url" or key == "data":  # images are priced apart
                continue
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)
    elif value is not None and not isinstance(value, bool | int | float):
        yield json.dumps(value, default=str)


TOOL_OVERHEAD = 8
"""Tokens per tool definition beyond its names, descriptions and types (the provider's
rendering of a function signature)."""

PROVIDER_OVERHEAD: dict[str, int] = {"cohere": 55}
"""Tokens a provider adds to every request (Cohere's default preamble, measured on the
recorded transcripts)."""

TOOL_PROMPT: dict[str, int] = {"anthropic": 346}
"""Tokens a provider adds to a request with tools (Anthropic's published tool-use system
prompt for ``tool_choice`` auto)."""


def count_input(
    provider: str,
    model: str | None,
    messages: Sequence[Mapping[str, Any]],
    tools: Any = None,
    response_format: Any = None,
) -> int:
    """Estimated input tokens of a request: its messages' text plus their overhead, its
    tool definitions (their names, descriptions and parameter names and types) and a
    response schema, plus what the provider adds (:data:`PROVIDER_OVERHEAD`,
    :data:`TOOL_PROMPT`)."""
    encoding = tiktoken_encoding(model) if provider in _OPENAI_LIKE else None

    def count(text: str) -> int:
        if encoding is not None:
            return len(encoding.encode(text, disallowed_special=()))
        return approximate_tokens(text)

    total = REQUEST_OVERHEAD + PROVIDER_OVERHEAD.get(provider, 0)
    for message in messages:
        total += MESSAGE_OVERHEAD
        total += sum(count(text) for text in _texts(message.get("content")))
        for key in ("tool_calls", "name"):
            if message.get(key):
                total += sum(count(text) for text in _texts(message[key]))
    if tools:
        definitions = tools if isinstance(tools, (list, tuple)) else [tools]
        total += TOOL_PROMPT.get(provider, 0)
        for tool in definitions:
            total += TOOL_OVERHEAD + sum(count(text) for text in _schema_texts(tool))
    if response_format:
        total += TOOL_OVERHEAD + sum(count(text) for text in _schema_texts(response_format))
    return total


def _schema_texts(value: Any) -> Iterable[str]:
    """The words of a tool or schema definition: keys and string values (its JSON
    punctuation is not sent as such: providers render signatures compactly)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in ("type", "function", "properties", "parameters", "input_schema"):
                yield str(key)
            yield from _schema_texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _schema_texts(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)
