"""ReplayServers in a child process, so the server's CPU is never counted as the client's.

``time.process_time()`` counts every thread of the measuring process: a ReplayServer
in the same process would add its own work to every figure. :class:`ServerPool` starts
one child process that builds the streams itself (nothing large crosses the pipe) and
runs one :class:`~streamkit.testing.ReplayServer` per (stream, pace) configuration.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any


def _serve(conn: Connection) -> None:
    import _streams

    from streamkit.testing import ReplayServer, Reply

    servers: dict[str, ReplayServer] = {}
    try:
        while True:
            command, argument = conn.recv()
            if command == "start":
                urls = {}
                for key, spec, pace in argument:
                    if key not in servers:
                        reply = Reply(_streams.build(spec), pace=pace)
                        servers[key] = ReplayServer(reply, pace=pace).start()
                    urls[key] = servers[key].url
                conn.send(urls)
            elif command == "last_request":
                key, timeout = argument
                record = servers[key].wait_for_request_end(-1, timeout=timeout)
                conn.send(
                    {
                        "events_total": record.events_total,
                        "events_sent": record.events_sent,
                        "disconnected": record.disconnected,
                        "disconnected_at_event": record.disconnected_at_event,
                        "completed": record.completed,
                        "requests": len(servers[key].requests),
                    }
                )
            elif command == "forget":
                servers[argument].requests.clear()
                conn.send(True)
            elif command == "stop":
                conn.send(True)
                return
    finally:
        for server in servers.values():
            server.close()


class ServerPool:
    """A child process serving generated streams; ``start`` returns their URLs."""

    def __init__(self) -> None:
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="bench-replay")
        self._process.start()

    def start(self, configs: list[tuple[str, str, float]]) -> dict[str, str]:
        """Serve each ``(key, stream spec, pace)``; return ``{key: url}``."""
        self._conn.send(("start", configs))
        urls: dict[str, str] = self._conn.recv()
        return urls

    def last_request(self, key: str, timeout: float = 30.0) -> dict[str, Any]:
        """What the server recorded of the latest request to ``key`` once it ended."""
        self._conn.send(("last_request", (key, timeout)))
        record: dict[str, Any] = self._conn.recv()
        return record

    def close(self) -> None:
        """Stop the servers and the child process."""
        if self._process.is_alive():
            self._conn.send(("stop", None))
            self._conn.recv()
        self._process.join(10)

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
