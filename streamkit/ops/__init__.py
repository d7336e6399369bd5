"""streamkit's operators, one module each, for ``reactivex``'s ``pipe``.

Each name here is a function that returns an ``Observable -> Observable`` function,
as reactivex's own operators do: ``stream.pipe(ops.text(), ...)``.
"""

from streamkit.ops._to_call_response import to_call_response

__all__ = ["to_call_response"]
