"""The replay server's provider modules (``streamkit/testing/replay/_providers/``) agree
with the transcripts and with each other: what a new provider module must get right."""

from __future__ import annotations

import pytest

from streamkit.testing.replay import PROVIDERS, event_text
from streamkit.testing.replay._payloads import first_text_event, with_text
from streamkit.testing.replay._providers import CLIENTS, DIALECTS, MODULES, WIRE_FORMATS
from streamkit.testing.transcripts import API_NAMES, load_transcript, transcript_names


def test_every_transcript_api_has_one_wire_format() -> None:
    declared = [wire.api for module in MODULES for wire in module.PROVIDER.wire_formats]
    assert sorted(declared) == sorted(API_NAMES)


def test_client_names_are_the_providers_and_unique() -> None:
    names = [client.name for module in MODULES for client in module.PROVIDER.clients]
    assert len(names) == len(set(names))
    assert tuple(names) == PROVIDERS == tuple(CLIENTS)


def test_dialects_are_of_providers_with_transcripts_and_not_of_api_owners() -> None:
    recorded = {load_transcript(name).provider for name in transcript_names(synthetic=False)}
    assert set(DIALECTS) <= recorded
    owners = {
        module.PROVIDER.clients[0].name
        for module in MODULES
        if module.PROVIDER.wire_formats and module.PROVIDER.clients
    }
    assert not set(DIALECTS) & owners


@pytest.mark.parametrize("api", sorted(WIRE_FORMATS))
def test_a_foreign_event_is_text_to_its_own_api_and_none_to_this_one(api: str) -> None:
    wire = WIRE_FORMATS[api]
    assert wire.foreign_api != api
    text_event = WIRE_FORMATS[wire.foreign_api].text_event
    assert text_event is not None
    event = text_event(" foreign words")
    assert event_text(event, wire.foreign_api) == " foreign words"
    assert event_text(event, api) == ""


@pytest.mark.parametrize("name", transcript_names())
def test_the_text_of_a_text_event_can_be_rewritten(name: str) -> None:
    transcript = load_transcript(name)
    found = first_text_event(transcript)
    if found is None:
        assert not any(event_text(e, transcript.api) for e in transcript.events)
        return
    _, event = found
    rewritten = with_text(event, transcript.api, "replaced")
    assert event_text(rewritten, transcript.api) == "replaced"
    assert rewritten.endswith(("\n\n", "\r\n\r\n"))
