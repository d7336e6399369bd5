"""Test helpers: replay recorded provider streams to real SDK clients over local HTTP.

- :class:`ReplayServer` serves :class:`Transcript` objects on ``127.0.0.1``,
  one SSE event per HTTP chunk, with pacing and :class:`Fault` injection, and
  records every :class:`RecordedRequest`.
- :func:`load_transcript` and :func:`transcript_names` give the bundled
  recordings (``streamkit/testing/transcripts/``).
- :mod:`~streamkit.testing.marbles` records a pipeline's events with their times and
  draws them as a marble diagram.

Importing this package imports no provider SDK (and not hypothesis): SDKs are
imported only when :meth:`ReplayServer.client` builds a client.
"""

from streamkit.testing import marbles
from streamkit.testing.replay import FAKE_API_KEY, Fault, RecordedRequest, ReplayServer, Reply
from streamkit.testing.transcripts import Transcript, load_transcript, transcript_names

__all__ = [
    "FAKE_API_KEY",
    "Fault",
    "RecordedRequest",
    "ReplayServer",
    "Reply",
    "Transcript",
    "load_transcript",
    "marbles",
    "transcript_names",
]
