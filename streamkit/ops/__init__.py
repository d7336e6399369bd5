"""streamkit's operators, one module each, for ``reactivex``'s ``pipe``.

Each name here is a function that returns an ``Observable -> Observable`` function,
as reactivex's own operators do: ``stream.pipe(ops.text(), ...)``.
"""

from streamkit.ops._accumulate import accumulate
from streamkit.ops._best_of import best_of
from streamkit.ops._budget import budget
from streamkit.ops._contest import NoMatchError
from streamkit.ops._fallback import Alternative, fallback
from streamkit.ops._hedge import hedge
from streamkit.ops._on_usage import on_usage
from streamkit.ops._partial_object import partial_object
from streamkit.ops._partial_tool_args import PartialToolArgs, partial_tool_args
from streamkit.ops._publish import publish
from streamkit.ops._race import first_match, race
from streamkit.ops._retry_on_error import retry_on_error
from streamkit.ops._share_replay import share_replay
from streamkit.ops._take_until_match import TextPattern, take_until_match
from streamkit.ops._tee_audio_text import AudioText, TeeSide, tee_audio_text
from streamkit.ops._text import text
from streamkit.ops._timeouts import deadlines, first_chunk_timeout, idle_timeout, total_timeout
from streamkit.ops._to_call_response import to_call_response

__all__ = [
    "Alternative",
    "AudioText",
    "NoMatchError",
    "PartialToolArgs",
    "TeeSide",
    "TextPattern",
    "accumulate",
    "best_of",
    "budget",
    "deadlines",
    "fallback",
    "first_chunk_timeout",
    "first_match",
    "hedge",
    "idle_timeout",
    "on_usage",
    "partial_object",
    "partial_tool_args",
    "publish",
    "race",
    "retry_on_error",
    "share_replay",
    "take_until_match",
    "tee_audio_text",
    "text",
    "to_call_response",
    "total_timeout",
]
