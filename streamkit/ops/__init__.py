"""streamkit's operators, one module each, for ``reactivex``'s ``pipe``.

Each name here is a function that returns an ``Observable -> Observable`` function,
as reactivex's own operators do: ``stream.pipe(ops.text(), ...)``.
"""

from streamkit.ops._accumulate import accumulate
from streamkit.ops._budget import budget
from streamkit.ops._on_usage import on_usage
from streamkit.ops._partial_object import partial_object
from streamkit.ops._partial_tool_args import PartialToolArgs, partial_tool_args
from streamkit.ops._retry_on_error import retry_on_error
from streamkit.ops._share_replay import share_replay
from streamkit.ops._take_until_match import TextPattern, take_until_match
from streamkit.ops._tee_audio_text import AudioText, TeeSide, tee_audio_text
from streamkit.ops._text import text
from streamkit.ops._timeouts import first_chunk_timeout, idle_timeout
from streamkit.ops._to_call_response import to_call_response

__all__ = [
    "AudioText",
    "PartialToolArgs",
    "TeeSide",
    "TextPattern",
    "accumulate",
    "budget",
    "first_chunk_timeout",
    "idle_timeout",
    "on_usage",
    "partial_object",
    "partial_tool_args",
    "retry_on_error",
    "share_replay",
    "take_until_match",
    "tee_audio_text",
    "text",
    "to_call_response",
]
