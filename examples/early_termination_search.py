"""Early-termination search: stop the model as soon as it has named what you wanted.

The model is asked for passwords and their secrets; all we want is the first pair.
``ops.take_until_match`` passes chunks on until the text so far matches a regular
expression (a match split across chunks is found), then completes and disposes the
stream, which closes the HTTP response: the provider stops generating, and you stop
paying for tokens nobody reads.

It runs offline: streamkit's ReplayServer replays a recorded OpenAI stream to the real
``openai`` client, paced like a real model (one event every 50 ms), and counts the
events it never had to send because the client hung up.

    python examples/early_termination_search.py
"""

from __future__ import annotations

import re

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer

# A quoted password, a colon, and its secret up to the end of the line.
FIRST_PAIR = re.compile(r'"(?P<password>[^"\n]+)":\s*(?P<secret>[^\n]+)\n')


def main() -> None:
    with ReplayServer("openai/chat-text-after-tool-results", pace=0.05) as server:
        client = server.client("openai")
        stream = sk.stream(
            "openai", "gpt-4o", "List the passwords and their secrets.", client=client
        )

        # A line is at most a few dozen characters: the bound keeps each search to the
        # last 120 characters instead of the whole text.
        response = stream.pipe(
            ops.take_until_match(FIRST_PAIR, max_match_length=120),
            ops.to_call_response(),
        ).run()

        found = FIRST_PAIR.search(response.content)
        assert found is not None
        print(f"found: password {found['password']!r} -> secret {found['secret']!r}")
        print(f"finish_reason: {response.finish_reason} (we stopped it before it finished)")

        request = server.wait_for_request_end(timeout=5)
        unsent = request.events_total - request.events_sent
        print(f"the server sent {request.events_sent} of {request.events_total} events")
        print(f"the server never had to send {unsent} of {request.events_total} events")


if __name__ == "__main__":
    main()
