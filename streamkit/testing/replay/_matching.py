"""Request matching: whether a request's path is one the transcript's API is served on
(each API's paths are declared by its provider module)."""

from __future__ import annotations

from urllib.parse import urlsplit

from streamkit.testing.replay._providers import wire_format


def path_fits_api(path: str, api: str) -> bool:
    """Whether a request path (query ignored) is one the ``api`` is served on.

    Unknown ``api`` values accept any path.
    """
    return path_mismatch(path, "", api) is None


def path_mismatch(path: str, transcript_name: str, api: str) -> str | None:
    """Why a request to ``path`` cannot be answered with the transcript
    ``transcript_name`` of ``api`` (its path is not one of the API's), or ``None``."""
    wire = wire_format(api)
    if wire is None:
        return None
    bare = urlsplit(path).path.rstrip("/")
    if wire.fits_path(bare):
        return None
    return (
        f"transcript {transcript_name!r} answers api {api!r} "
        f"({wire.path_rule}), but the request path was {urlsplit(path).path!r}: "
        f"is the client's base URL right?"
    )
