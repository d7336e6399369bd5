"""Sending on the client's socket: waits between events (pace and stalls), trickled
bytes and cut connections, all watching for the client leaving or the server closing."""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from streamkit.testing.replay._http import Handler

# Upper bound of one select() while waiting, so the closing flag is seen even if
# a wake-up were missed.
_WAIT_SLICE = 0.2

Peer: TypeAlias = Literal["alive", "gone", "closing"]
"""The client as a send or a wait left it: still there, gone, or the server closing."""


def _peek_gone(sock: socket.socket) -> bool | None:
    """``True`` if the peer closed, ``False`` if data is waiting, ``None`` if nothing."""
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return True
    return data == b""


class Watcher:
    """Writes to a client socket and waits between writes, watching for the client leaving."""

    def __init__(self, sock: socket.socket, closing: threading.Event) -> None:
        self._sock = sock
        self._closing = closing
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self.state: Peer = "alive"

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._selector.close()

    def _readable(self, timeout: float) -> bool:
        try:
            return bool(self._selector.select(timeout))
        except (OSError, ValueError):
            self.state = "gone"
            return True

    def still_there(self) -> bool:
        """Check without waiting whether the client is still connected."""
        return self.wait(0.0)

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds``; ``False`` as soon as the client leaves or the server closes."""
        deadline = time.monotonic() + seconds
        while True:
            if self._closing.is_set():
                self.state = "closing"
                return False
            remaining = deadline - time.monotonic()
            if self._readable(max(0.0, min(remaining, _WAIT_SLICE))):
                if self.state == "gone":
                    return False
                gone = _peek_gone(self._sock)
                if gone:
                    self.state = "gone"
                    return False
                if gone is False:
                    # The client sent bytes (a pipelined request): no EOF to see
                    # behind them, so just sleep out the slice.
                    time.sleep(max(0.0, min(remaining, 0.01)))
            if remaining <= 0:
                return True

    def send_trickle(self, data: bytes, delay: float) -> bool:
        """Write ``data`` one byte at a time, ``delay`` seconds apart; ``False`` as
        soon as the client is gone (a write to a closed peer fails within a byte or
        two, so the wait is a plain sleep rather than a watch of the socket)."""
        for index in range(len(data)):
            if index and delay > 0:
                time.sleep(delay)
            if not self.send(data[index : index + 1]):
                return False
        return True

    def send(self, data: bytes) -> bool:
        """Write all of ``data``; ``False`` if the client is gone."""
        if self._closing.is_set():
            self.state = "closing"
            return False
        try:
            self._sock.sendall(data)
        except OSError:
            self.state = "closing" if self._closing.is_set() else "gone"
            return False
        return True


class BodyWriter:
    """Sends body frames, one byte at a time for the first ``budget`` bytes
    (all of them when ``budget`` is ``None``) when a trickle ``delay`` is given."""

    def __init__(self, watch: Watcher, delay: float | None, budget: int | None) -> None:
        self._watch = watch
        self._delay = delay
        self._left = budget

    def send(self, data: bytes) -> bool:
        """Write ``data``; ``False`` if the client is gone."""
        if self._delay is None:
            return self._watch.send(data)
        if self._left is None:
            return self._watch.send_trickle(data, self._delay)
        slow, fast = data[: self._left], data[self._left :]
        self._left -= len(slow)
        if slow and not self._watch.send_trickle(slow, self._delay):
            return False
        return not fast or self._watch.send(fast)


def cut_connection(handler: Handler, how: Literal["close", "reset"]) -> None:
    """End the connection mid-body: a clean close (FIN) or a reset (RST)."""
    handler.close_connection = True
    sock = handler.connection
    if how == "reset":
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The handler's rfile holds a reference to the socket: close both so
        # the descriptor really closes now (and the RST goes out).
        sock.close()
        with contextlib.suppress(OSError):
            handler.rfile.close()
    else:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
