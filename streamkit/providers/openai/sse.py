"""The SSE splitter of the fast paths, under its former name: it lives in
:mod:`streamkit.providers._sse` since every Stainless SDK's fast path shares it."""

from __future__ import annotations

from streamkit.providers._sse import SSESplitter

__all__ = ["SSESplitter"]
