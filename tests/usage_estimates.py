"""How far streamkit's token estimates are from what the providers reported.

Each recorded (non-synthetic) transcript that reports usage is streamed to completion
through its provider's SDK on the replay server; its last reported usage is compared
with streamkit's estimates: output tokens from the text received (what an early stop
would bill from), input tokens from the recorded request's messages and tools.

Hidden reasoning cannot be counted from text: where a provider reports reasoning tokens
that arrive without their text (OpenAI's reasoning models, Gemini's thoughts), the
output estimate is compared with the visible part (``output - reasoning``) and the row
says so.

``python -m tests.usage_estimates`` prints the table of ``docs/usage-and-cost.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import streamkit as sk
from streamkit._tokens import count_input, count_output
from streamkit.testing import ReplayServer, load_transcript
from streamkit.testing.transcripts import transcript_names
from tests.ops._pipelines import collect_sync

OUTPUT_BOUND = 0.60
"""Largest relative error of an output estimate on the transcripts (see the docs)."""
INPUT_BOUND = 1.00
"""Largest relative error of an input estimate on the transcripts, outliers apart."""
INPUT_OUTLIERS = ("anthropic/messages-server-tool-code-execution",)
"""Transcripts whose input no estimate from the request can approach: Anthropic's
server tools (code execution) add a system prompt of thousands of tokens."""
ABSOLUTE_SLACK = 8
"""Tokens of error always allowed: on a ten-token answer one token is 10 %."""

_PROVIDER_OF_API = {
    "chat.completions": None,  # the transcript's provider (openai, groq, mistral)
    "responses": "openai",
    "messages": "anthropic",
    "streamGenerateContent": "google",
    "v2/chat": "cohere",
}


@dataclass(frozen=True)
class Row:
    """One transcript's reported usage and streamkit's estimates of it."""

    transcript: str
    provider: str
    model: str | None
    reported_input: int
    estimated_input: int
    reported_output: int
    visible_output: int
    estimated_output: int
    hidden_reasoning: bool

    @property
    def input_error(self) -> float:
        """Relative error of the input estimate."""
        return (self.estimated_input - self.reported_input) / max(self.reported_input, 1)

    @property
    def output_error(self) -> float:
        """Relative error of the output estimate against the visible output."""
        return (self.estimated_output - self.visible_output) / max(self.visible_output, 1)


def _cases() -> list[tuple[str, str]]:
    cases = []
    for name in transcript_names(synthetic=False):
        transcript = load_transcript(name)
        if transcript.status != 200:
            continue
        raw = json.loads(_raw(name))
        if raw["provider"] == "openrouter":
            continue  # an error mid-stream: no usage
        provider = _PROVIDER_OF_API.get(raw["api"]) or raw["provider"]
        cases.append((name, provider))
    return cases


def _raw(name: str) -> str:
    from importlib.resources import files

    return (files("streamkit.testing") / "transcripts" / f"{name}.json").read_text()


def _request_messages(body: dict[str, Any]) -> tuple[list[dict[str, Any]], Any, Any]:
    """The request's messages (as ``{"content": ...}``), tool definitions and response
    schema."""
    messages: list[dict[str, Any]] = []
    system = body.get("system") or body.get("systemInstruction")
    if system:
        messages.append({"role": "system", "content": system})
    turns = body.get("messages") or body.get("contents") or body.get("input") or []
    if isinstance(turns, str):
        turns = [{"role": "user", "content": turns}]
    for turn in turns:
        content = {k: v for k, v in turn.items() if k != "role"}
        messages.append({"role": turn.get("role", "user"), "content": content})
    documents = body.get("documents")
    if documents:
        messages.append({"role": "system", "content": documents})
    schema = body.get("response_format") or (body.get("text") or {}).get("format")
    tools = body.get("tools")
    return messages, tools, schema


def measure() -> list[Row]:
    """Stream every case to its end and compare (a few seconds)."""
    rows = []
    with ReplayServer(keep_alive=False) as server:
        for name, provider in _cases():
            raw = json.loads(_raw(name))
            body = raw["request"].get("json") or {}
            server.push(name)
            params: dict[str, Any] = {"api": "responses"} if raw["api"] == "responses" else {}
            model = body.get("model") or "replayed-model"
            client = server.client(provider)
            stream = sk.stream(provider, model, "hi", client=client, **params)
            chunks, error = collect_sync(stream)
            usages = [c.usage for c in chunks if c.usage is not None]
            if error is not None or not usages:
                continue
            usage = usages[-1]
            reported_model = next((c.model for c in reversed(chunks) if c.model), model)
            # Reasoning reported apart arrives without (all) its text: compare the
            # visible answer only.
            hidden = bool(usage.reasoning_tokens)
            received = "".join(
                c.content
                + ("" if hidden else c.thinking)
                + c.refusal
                + "".join((d.name or "") + d.arguments for d in c.tool_calls)
                for c in chunks
            )
            messages, tools, schema = _request_messages(body)
            cached = usage.cached_tokens or 0
            rows.append(
                Row(
                    transcript=name,
                    provider=provider,
                    model=reported_model,
                    reported_input=usage.input_tokens + (cached if provider == "anthropic" else 0),
                    estimated_input=count_input(provider, reported_model, messages, tools, schema),
                    reported_output=usage.output_tokens,
                    visible_output=usage.output_tokens - (usage.reasoning_tokens or 0),
                    estimated_output=count_output(
                        provider, reported_model, received, len(received)
                    ),
                    hidden_reasoning=hidden,
                )
            )
    return rows


def table(rows: list[Row]) -> str:
    """The rows as the docs' markdown table."""
    lines = [
        "| transcript | input: reported | estimated | error | output: reported "
        "(visible) | estimated | error |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        visible = (
            f"{row.reported_output} ({row.visible_output})"
            if row.hidden_reasoning
            else str(row.reported_output)
        )
        lines.append(
            f"| `{row.transcript}` | {row.reported_input} | {row.estimated_input} | "
            f"{row.input_error:+.0%} | {visible} | {row.estimated_output} | "
            f"{row.output_error:+.0%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    measured = measure()
    print(table(measured))
    print()
    print(f"max |input error|: {max(abs(r.input_error) for r in measured):.0%}")
    print(f"max |output error|: {max(abs(r.output_error) for r in measured):.0%}")
