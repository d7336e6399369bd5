"""Replies: what the server answers a request with (a transcript, pace and fault)."""

from __future__ import annotations

from typing import TypeAlias

from streamkit.testing.replay._faults import Fault
from streamkit.testing.transcripts import Transcript, load_transcript


class Reply:
    """One queued answer: a transcript plus how to send it.

    Args:
        transcript: a :class:`Transcript` or the name of a bundled one.
        pace: seconds between events; ``None`` uses the server's ``pace``.
        fault: how to break the reply on the wire, if at all.
        status: an HTTP status to send instead of the transcript's.
    """

    __slots__ = ("fault", "pace", "status", "transcript")

    transcript: Transcript
    pace: float | None
    fault: Fault | None
    status: int | None

    def __init__(
        self,
        transcript: str | Transcript,
        *,
        pace: float | None = None,
        fault: Fault | None = None,
        status: int | None = None,
    ) -> None:
        if pace is not None and pace < 0:
            raise ValueError(f"pace must be >= 0, got {pace}")
        self.transcript = load_transcript(transcript) if isinstance(transcript, str) else transcript
        self.pace = pace
        self.fault = fault
        self.status = status

    def __repr__(self) -> str:
        return (
            f"Reply({self.transcript.name!r}, pace={self.pace!r}, "
            f"fault={self.fault!r}, status={self.status!r})"
        )

    @classmethod
    def of(cls, reply: ReplyLike) -> Reply:
        """Coerce a transcript name, a :class:`Transcript` or a :class:`Reply`."""
        if isinstance(reply, Reply):
            return reply
        return cls(reply)


ReplyLike: TypeAlias = "str | Transcript | Reply"
"""What every method that takes a reply accepts."""
