"""A real browser (headless Chromium via Playwright) drives the chat page of
``python -m streamkit serve``: text streams in; the stop button and closing the tab each
close the provider connection within one event, per the replay server's records, and
are recorded apart (``stopped``, ``disconnected``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamkit.serve._cli import ChatServer, build_chat_server
from tests.serve._harness import running

CHROMIUM = os.environ.get("STREAMKIT_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "assets" / "serve-chat.png"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def chat(request: pytest.FixtureRequest) -> Iterator[tuple[ChatServer, str]]:
    # Slow enough by default for a stop to land mid-stream; a test may ask for faster.
    server = build_chat_server(pace=getattr(request, "param", 0.08))
    try:
        with running(server.app) as url:
            yield server, url
    finally:
        server.close()


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def start_streaming(page: Any, url: str) -> None:
    page.goto(url)
    page.fill("#prompt", "How do I cross the street?")
    page.click("#send")
    # Text streams in: the assistant's reasoning part grows over several events.
    page.wait_for_function(
        "document.querySelector('.assistant') && "
        "document.querySelector('.assistant').textContent.length > 40"
    )


@pytest.mark.parametrize("chat", [0.02], indirect=True, ids=["paced 20 ms"])
def test_the_page_streams_to_the_end_and_shows_usage(
    browser: Any, chat: tuple[ChatServer, str]
) -> None:
    server, url = chat
    page = browser.new_page(viewport={"width": 900, "height": 640})
    page.goto(url)
    page.fill("#prompt", "How do I cross the street?")  # the replayed recording's prompt
    page.click("#send")
    page.wait_for_selector(".usage", timeout=30_000)
    assert "finish: stop" in page.inner_text(".usage")
    assert page.inner_text(".assistant .text").strip()
    page.locator("details.reasoning").evaluate("d => d.open = true")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.close()
    assert server.replay.wait_for_request_end().completed


@pytest.mark.parametrize("how", ["stop button", "closed tab"])
def test_stopping_closes_the_provider_connection_within_one_event(
    browser: Any, chat: tuple[ChatServer, str], how: str
) -> None:
    server, url = chat
    page = browser.new_page()
    start_streaming(page, url)
    record = server.replay.requests[-1]
    sent_when_stopped = record.events_sent
    if how == "stop button":
        page.click("#stop")
        page.wait_for_selector("text=stopped")
    else:
        page.close()
    record = server.replay.wait_for_request_end()
    wait_for(lambda: len(server.ends) == 1)
    assert record.disconnected and not record.completed
    assert record.events_sent <= sent_when_stopped + 1
    # The page's stop button asks the server to stop; a closed tab just goes away.
    assert server.ends[0].reason == ("stopped" if how == "stop button" else "disconnected")
    assert server.ends[0].usage is not None  # the usage so far is recorded
    if how == "stop button":
        # The page shows it too: input reported, output counted by streamkit.
        usage = server.ends[0].usage
        shown = f"stopped, tokens in {usage.input_tokens} / out {usage.output_tokens} (mixed)"
        assert usage.source == "mixed" and page.inner_text(".usage") == shown
        page.close()


def test_the_page_shows_tool_calls_with_their_input(browser: Any) -> None:
    server = build_chat_server(transcript="anthropic/messages-parallel-tool-use", pace=0.0)
    try:
        with running(server.app) as url:
            page = browser.new_page()
            page.goto(url)
            page.click("#send")
            page.wait_for_selector(".usage", timeout=30_000)
            usage = page.inner_text(".usage")
            tools = page.locator(".assistant .tool").all_inner_texts()
            page.close()
    finally:
        server.close()
    assert "finish: tool-calls" in usage
    assert tools == [
        'secret_retrieval_tool({"password":"mellon"})',
        'secret_retrieval_tool({"password":"radiance"})',
    ]
