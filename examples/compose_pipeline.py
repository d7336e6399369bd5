"""Compose streamkit operators in application code: live text, progress, final response.

What it shows:

1. ``ops.text()`` behind ``ops.first_chunk_timeout`` and ``ops.idle_timeout``: the text
   printed as it streams, with a stalled provider turned into an error instead of a hang;
2. ``ops.accumulate()``: the response so far after every chunk, cheap enough to keep one
   per chunk (a snapshot joins its text only when read);
3. ``ops.to_call_response()``: the whole response at the end, usage and the assistant
   message to send back included.

A stream is cold: each of the three pipelines is its own request, as the last line says.

It runs offline: streamkit's ReplayServer replays a recorded OpenAI stream to the real
``openai`` client on 127.0.0.1 (with the replay server's fake key).

    python examples/compose_pipeline.py
"""

from __future__ import annotations

import reactivex.operators as rx

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer


def show(delta: str) -> None:
    print(delta, end="", flush=True)


def main() -> None:
    with ReplayServer("openai/chat-text-after-tool-results", pace=0.01) as server:
        client = server.client("openai")
        stream = sk.stream(
            "openai", "gpt-4o", "Which secret goes with each password?", client=client
        )

        # 1. Live text, guarded: no first token within 10 s, or a 5 s silence, fails it.
        print("live text:")
        live_text = stream.pipe(ops.first_chunk_timeout(10), ops.idle_timeout(5), ops.text())
        live_text.pipe(rx.do_action(show), rx.to_list()).run()
        print()

        # 2. Progress: a snapshot per chunk; reading a few of them costs only those reads.
        snapshots = stream.pipe(ops.accumulate(), rx.to_list()).run()
        for snapshot in snapshots[:: max(1, len(snapshots) // 4)]:
            print(f"after chunk {snapshot.chunks:>2}: {len(snapshot.content):>3} characters")
        print(f"last snapshot: finish_reason={snapshots[-1].finish_reason}")

        # 3. The whole response.
        response = stream.pipe(ops.to_call_response()).run()
        print(f"final: finish_reason={response.finish_reason} usage={response.usage}")
        print(f"message to send back: role={response.message_param.get('role')}")
        assert snapshots[-1].content == response.content

        print(f"requests made: {len(server.requests)}")


if __name__ == "__main__":
    main()
