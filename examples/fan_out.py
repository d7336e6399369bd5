"""Fan out one LLM stream to several subscribers with ``ops.share_replay()``: one request.

What it shows:

1. a screen printer, a logger and a reducer all subscribe to one shared stream, and
   the provider sees exactly one request (a plain stream is cold: one request each);
2. the logger joins mid-stream and still logs every chunk: it first gets what it
   missed, then the live chunks;
3. a subscriber that arrives after the end gets the whole replay, with no new request.

It runs offline: streamkit's ReplayServer replays a recorded OpenAI stream to the real
``openai`` client on 127.0.0.1, paced like a real model.

    python examples/fan_out.py
"""

from __future__ import annotations

import io
import logging
import threading

import reactivex.operators as rx

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer

# The logger writes to its own buffer, shown after the text: on a terminal, log lines on
# stderr would interleave with the live text on stdout. Only this logger is configured, so
# library loggers (httpx's INFO request line) stay quiet.
log_buffer = io.StringIO()
log = logging.getLogger("fan_out")
log.setLevel(logging.INFO)
log.propagate = False
_handler = logging.StreamHandler(log_buffer)
_handler.setFormatter(logging.Formatter("log: %(message)s"))
log.addHandler(_handler)


def main() -> None:
    with ReplayServer("openai/chat-text-after-tool-results", pace=0.02) as server:
        client = server.client("openai")
        stream = sk.stream(
            "openai", "gpt-4o", "Which secret goes with each password?", client=client
        )
        shared = stream.pipe(ops.share_replay())

        # 1. The screen: live text. The first subscription makes the request.
        printed: list[str] = []
        a_few_printed = threading.Event()

        def show(delta: str) -> None:
            printed.append(delta)
            print(delta, end="", flush=True)
            if len(printed) == 5:
                a_few_printed.set()

        shared.pipe(ops.text()).subscribe(show)

        # 2. The logger joins mid-stream: the chunks it missed come first.
        a_few_printed.wait(10)
        logged: list[sk.Chunk] = []

        def log_chunk(chunk: sk.Chunk) -> None:
            logged.append(chunk)
            log.info("chunk %d: %r", len(logged), chunk.content)

        joined_after = len(printed)
        shared.subscribe(log_chunk)

        # 3. The reducer: blocks until the shared stream completes.
        response = shared.pipe(ops.to_call_response()).run()
        print()
        print(f"logger joined after {joined_after} text pieces and logged all {len(logged)} chunks")
        log_lines = log_buffer.getvalue().splitlines()
        print("\n".join([*log_lines[:3], f"log: ... {len(log_lines) - 3} more lines"]))
        print(
            f"response: {len(response.content)} characters, finish_reason={response.finish_reason}"
        )

        # After the end: the whole replay, at once, without a new request.
        replayed = shared.pipe(rx.to_list()).run()
        print(f"a subscriber after the end got {len(replayed)} chunks")
        assert "".join(printed) == response.content == "".join(c.content for c in replayed)
        print(f"requests made: {len(server.requests)}")


if __name__ == "__main__":
    main()
