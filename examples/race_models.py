"""Race three models: keep the first answer that passes a check, stop the others.

The same question goes to OpenAI, Anthropic and Gemini at once. ``sk.race(...,
until=...)`` emits the chunks of the first model whose text so far passes the check
(here: it states the right sum) and disposes the other two that instant, which closes
their HTTP responses: they stop generating, and you stop paying for tokens nobody
reads. The response's ``usage`` counts what the losers reported before they were
closed, and ``spans`` says which model wrote the answer.

It runs offline: each provider is a ReplayServer replaying a recorded stream of that
provider to its official SDK client, paced like a real model and with its own delay
before the first token; the servers' records show what each loser was spared.

    python examples/race_models.py
"""

from __future__ import annotations

import streamkit as sk
from streamkit import ops
from streamkit.testing import Fault, ReplayServer, Reply

QUESTION = "What is 4200 + 42?"

# provider -> (model, recorded stream, seconds before the first token, seconds per event)
MODELS = {
    "openai": ("gpt-4o", "openai/chat-text-usage", 0.8, 0.05),
    "anthropic": ("claude-sonnet-4-5", "anthropic/messages-text", 0.1, 0.15),
    "google": ("gemini-2.5-flash", "google/gemini-text", 0.2, 0.05),
}


def states_the_sum(text: str) -> bool:
    """The check an answer must pass: it gives the right result."""
    return "4242" in text


def main() -> None:
    servers = {
        provider: ReplayServer(
            Reply(transcript, pace=pace, fault=Fault(stall_before=first_token))
        ).start()
        for provider, (_, transcript, first_token, pace) in MODELS.items()
    }
    try:
        candidates = [
            sk.stream(provider, model, QUESTION, client=servers[provider].client(provider))
            for provider, (model, *_) in MODELS.items()
        ]
        response = sk.race(*candidates, until=states_the_sum).pipe(ops.to_call_response()).run()

        print(f"answer: {response.content!r}")
        for span in response.spans:
            print(f"written by: {span.provider} ({span.model}), characters {span.start}-{span.end}")
        print(f"usage, losers included: {response.usage}")

        losers = [p for p in MODELS if p != response.provider]
        closed = 0
        for provider in losers:
            record = servers[provider].wait_for_request_end(0, timeout=5)
            closed += record.disconnected and not record.completed
            print(f"{provider}: closed after {record.events_sent} of {record.events_total} events")
        print(f"losers closed early: {closed} of {len(losers)}")
    finally:
        for server in servers.values():
            server.close()


if __name__ == "__main__":
    main()
