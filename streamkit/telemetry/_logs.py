"""DEBUG lines for every request's start, first chunk and end, with the span's fields.

A lifecycle observer attached process-wide when streamkit is imported. Each call first
asks the logger whether DEBUG is enabled, so with logging at its default level a
request costs three cheap checks (start, first chunk, end) and nothing per chunk.
Nothing here logs above DEBUG: a normal run is silent unless DEBUG is asked for::

    logging.getLogger("streamkit").setLevel(logging.DEBUG)
"""

from __future__ import annotations

import logging

from streamkit._lifecycle import LifecycleObserver, StreamEnd, StreamStart
from streamkit._models import Chunk
from streamkit.telemetry import _semconv as sc

__all__ = ["RequestLog", "logger"]

logger = logging.getLogger(__name__)


class RequestLog(LifecycleObserver):
    """Logs ``request start`` / ``request first chunk`` / ``request end`` at DEBUG."""

    def on_start(self, start: StreamStart) -> None:
        """``request start`` with the request's id, the span's starting attributes
        (operation, provider, model, the whitelisted ``gen_ai.request.*`` parameters) and
        the attempt."""
        if logger.isEnabledFor(logging.DEBUG):
            from streamkit.telemetry._fields import base_attributes

            fields = base_attributes(start.provider, start.request_model)
            fields.update(sc.request_attributes(start.params))
            fields[sc.ATTEMPT] = start.attempt
            logger.debug(
                "request start id=%d %s",
                start.id,
                " ".join(f"{key}={value}" for key, value in fields.items()),
            )

    def on_first_chunk(self, start: StreamStart, chunk: Chunk, now_ns: int) -> None:
        """``request first chunk`` with the time to first chunk, in seconds."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "request first chunk id=%d %s=%.6f",
                start.id,
                sc.RESPONSE_TIME_TO_FIRST_CHUNK,
                (now_ns - start.started_ns) / 1e9,
            )

    def on_end(self, end: StreamEnd) -> None:
        """``request end`` with the fields the span's end sets (outcome, chunks, usage,
        cost, response model and id, finish reasons, error type) and the duration."""
        if logger.isEnabledFor(logging.DEBUG):
            from streamkit.telemetry._fields import end_fields

            fields = end_fields(end)
            text = " ".join(f"{key}={value}" for key, value in fields.items())
            logger.debug(
                "request end id=%d %s duration_s=%.6f",
                end.start.id,
                text,
                (end.ended_ns - end.start.started_ns) / 1e9,
            )
