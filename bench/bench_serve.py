"""The serve transport's cost: ``openai_sse_response`` over a streamkit stream vs a
hand-written Starlette ``StreamingResponse`` loop over the raw ``openai`` SDK.

Both arms serve the same OpenAI chunk SSE on one uvicorn worker (this process). The
provider (a minimal HTTP server writing OpenAI chat chunk events) and the HTTP client
each run in a child process, so the CPU measured here (``time.process_time`` of this
process: uvicorn, the SDK and the transport) is the serving side's only.

- CPU per event: N events, burst, several requests per arm, median of rounds.
- Latency: the provider writes ``time.monotonic_ns()`` (a system-wide clock on Linux)
  as each event's text; the client takes ``now - stamp`` per event as it reads it.
  Events are paced so each is sent on its own.

Run: ``PYTHONPATH=. python bench/bench_serve.py [--write]`` (``--write`` updates the
"Serving to a browser" section of docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "serve"))

SECTION = "serve"  # its section of docs/performance.md (bench/_sections.py)
X = "\u00d7"  # the multiplication sign (spelled out: ruff flags it as ambiguous)


def _provider(port_queue: Any, events: int, pace: float) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            head = '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
            for _ in range(events):
                delta = json.dumps({"content": f"{time.monotonic_ns()} "})
                choice = f'"choices":[{{"index":0,"delta":{delta},"finish_reason":null}}]}}'
                self.wfile.write(f"data: {head}{choice}\n\n".encode())
                self.wfile.flush()
                if pace:
                    time.sleep(pace)
            end = '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
            # The usage chunk, as OpenAI sends it when asked (streamkit asks for it).
            usage = f'"choices":[],"usage":{{"prompt_tokens":5,"completion_tokens":{events},'
            usage += f'"total_tokens":{events + 5}}}}}'
            self.wfile.write(f"data: {head}{end}\n\ndata: {head}{usage}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _client(url: str, requests: int, result: Any) -> None:
    try:
        result.put(_read(url, requests))
    except BaseException as error:  # the parent must hear of it, not wait forever
        result.put(f"{type(error).__name__}: {error}")
        raise


def _read(url: str, requests: int) -> list[float]:
    import httpx

    latencies: list[float] = []
    with httpx.Client(timeout=120) as client:
        for _ in range(requests):
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
            with client.stream("POST", url, json=body) as response:
                response.raise_for_status()
                finished = False
                for line in response.iter_lines():
                    if not line.startswith("data: {"):
                        continue
                    now = time.monotonic_ns()
                    data = json.loads(line[6:])
                    if "error" in data:
                        raise RuntimeError(data["error"])
                    choices = data.get("choices") or [{"delta": {}}]
                    finished = finished or choices[0].get("finish_reason") == "stop"
                    content = choices[0]["delta"].get("content") or ""
                    if content.strip():
                        latencies.append((now - int(content.split()[0])) / 1000)
                if not finished:  # a cut-short stream would make an arm look cheap
                    raise RuntimeError("the response ended without its finish reason")
    return latencies


def _app(provider_url: str) -> Any:
    import openai
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    import streamkit as sk
    from streamkit.serve import openai_sse_response

    client = openai.AsyncOpenAI(base_url=provider_url, api_key="sk-bench-fake", max_retries=0)

    async def raw(request: Request) -> Response:
        await request.body()

        async def events() -> Any:
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for chunk in stream:
                yield f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def streamkit(request: Request) -> Response:
        await request.body()
        # the SDK path, as these figures have always been measured
        stream = sk.stream("openai", "m", "hi", client=client, fast=False)
        return openai_sse_response(stream, model="m")

    return Starlette(
        routes=[
            Route("/raw/v1/chat/completions", raw, methods=["POST"]),
            Route("/sk/v1/chat/completions", streamkit, methods=["POST"]),
        ]
    )


def _run_client(url: str, requests: int) -> list[float]:
    result: Any = mp.Queue()
    child = mp.Process(target=_client, args=(url, requests, result))
    child.start()
    latencies: list[float] | str = result.get()
    child.join()
    if isinstance(latencies, str):
        raise RuntimeError(f"the client failed: {latencies}")
    return latencies


def measure(
    events: int, requests: int, rounds: int, latency_events: int, latency_rounds: int
) -> dict[str, Any]:
    """Run both arms; return CPU per event (µs) and latency percentiles (µs)."""
    from _harness import running  # tests/serve/_harness.py

    out: dict[str, Any] = {"events": events, "requests": requests, "rounds": rounds}
    out["load"] = [os.getloadavg()[0]]
    for label, pace, count in (("cpu", 0.0, events), ("latency", 0.004, latency_events)):
        ports: Any = mp.Queue()
        provider = mp.Process(target=_provider, args=(ports, count, pace), daemon=True)
        provider.start()
        provider_url = f"http://127.0.0.1:{ports.get()}/v1"
        with running(_app(provider_url)) as url:
            for arm in ("raw", "sk"):
                _run_client(f"{url}/{arm}/v1/chat/completions", 1)  # warm-up
            if label == "cpu":
                # Rounds alternate the arms, so drift on a shared machine hits both alike.
                per_event: dict[str, list[float]] = {"raw": [], "sk": []}
                for _ in range(rounds):
                    for arm in ("raw", "sk"):
                        before = time.process_time()
                        _run_client(f"{url}/{arm}/v1/chat/completions", requests)
                        spent = time.process_time() - before
                        per_event[arm].append(spent / (events * requests) * 1e6)
                for arm, values in per_event.items():
                    out[f"cpu_{arm}"] = statistics.median(values)
                ratios = [
                    sk / raw for raw, sk in zip(per_event["raw"], per_event["sk"], strict=True)
                ]
                out["cpu_ratio_range"] = (min(ratios), max(ratios))
            else:
                # Per round one response per arm, alternating; the p99 of each response,
                # then the median over rounds: one preempted moment on a shared machine
                # moves one round, not the figure.
                p50s: dict[str, list[float]] = {"raw": [], "sk": []}
                p99s: dict[str, list[float]] = {"raw": [], "sk": []}
                for _ in range(latency_rounds):
                    for arm in ("raw", "sk"):
                        values = sorted(_run_client(f"{url}/{arm}/v1/chat/completions", 1))
                        p50s[arm].append(values[len(values) // 2])
                        p99s[arm].append(values[int(len(values) * 0.99)])
                for arm in ("raw", "sk"):
                    out[f"p50_{arm}"] = statistics.median(p50s[arm])
                    out[f"p99_{arm}"] = statistics.median(p99s[arm])
                added = [sk - raw for raw, sk in zip(p99s["raw"], p99s["sk"], strict=True)]
                out["p99_added"] = statistics.median(added)
                out["p99_added_range"] = (min(added), max(added))
                out["latency_samples"] = count
                out["latency_rounds"] = latency_rounds
        provider.terminate()
        provider.join()
    out["load"].append(os.getloadavg()[0])
    return out


def _versions() -> str:
    import importlib.metadata

    names = ("streamkit", "openai", "starlette", "uvicorn", "httpx")
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)


def section(result: dict[str, Any]) -> str:
    """The docs section for one result."""
    ratio = result["cpu_sk"] / result["cpu_raw"]
    low, high = result["cpu_ratio_range"]
    added = result["p99_added"]
    added_low, added_high = result["p99_added_range"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    loads = ", ".join(f"{load:.1f}" for load in result["load"])
    cpu_row = (
        f"| CPU per event ({result['events']} events {X} {result['requests']} requests, "
        f"median of {result['rounds']} rounds) | {result['cpu_raw']:.1f} µs | "
        f"{result['cpu_sk']:.1f} µs | {ratio:.2f}{X} (rounds: {low:.2f}-{high:.2f}{X}) | "
        f"≤ 1.10{X} | **{'yes' if ratio <= 1.10 else 'no'}** |"
    )
    p50 = (result["p50_sk"] - result["p50_raw"]) / 1000
    p50_row = (
        f"| provider event → client socket, p50 | {result['p50_raw'] / 1000:.2f} ms | "
        f"{result['p50_sk'] / 1000:.2f} ms | {p50:+.2f} ms | | |"
    )
    p99_row = (
        f"| provider event → client socket, p99 ({result['latency_samples']} events a "
        f"response, median of {result['latency_rounds']} rounds) | "
        f"{result['p99_raw'] / 1000:.2f} ms | {result['p99_sk'] / 1000:.2f} ms | "
        f"{added / 1000:+.2f} ms (rounds: {added_low / 1000:+.2f} to {added_high / 1000:+.2f}) "
        f"| ≤ 1 ms added | **{'yes' if added <= 1000 else 'no'}** |"
    )
    return f"""## Serving to a browser (`streamkit.serve`)

<!-- Written by bench/bench_serve.py (bench/run.py keeps this section): run it again. -->

The server side this time: what [`streamkit.serve`](serving.md) costs a web server next
to the hand-written loop it replaces. One uvicorn worker (this process) serves OpenAI
chunk SSE two ways, measured in **one run**, the rounds alternating between them:

- **raw SDK loop** (the baseline): a Starlette `StreamingResponse` over an async
  generator, `async for chunk in stream: yield f"data: {{chunk.model_dump_json()}}\\n\\n"`,
  over the raw `openai` SDK (`AsyncOpenAI`);
- **streamkit.serve**: `openai_sse_response(sk.stream("openai", ..., client=AsyncOpenAI))`
  (normalized chunks, the encoder, the bounded queue, disconnect watching, heartbeats).

The provider (a small HTTP server writing OpenAI chunk events) and the HTTP client each
run in a child process, so the CPU measured (`time.process_time` of the serving process)
is the serving side's only. CPU: {result["events"]} events per response written at once.
Latency: the provider writes `time.monotonic_ns()` (one clock for every process on
Linux) into each event, 4 ms apart so each is sent on its own, and the client takes
`now - stamp` as it reads the event; "added" is the median over rounds of each round's
p99 difference. The baseline writes the SDK's pydantic object out again
(`model_dump_json`), streamkit a small dict of the normalized chunk (`json.dumps`): the
encoding is not where the transport's cost is, which is why the ratio can be below 1.

- Written: {when}; load average (1 min) before and after: {loads} (2 shared cores: read
  the ratio, not the absolute figures)
- Versions: {_versions()}
- Command: `PYTHONPATH=. python bench/bench_serve.py --write`

| measure | raw SDK loop | streamkit.serve | ratio / added | goal | met |
| --- | --- | --- | --- | --- | --- |
{cpu_row}
{p50_row}
{p99_row}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--latency-rounds", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    result = measure(
        args.events, args.requests, args.rounds, args.latency_events, args.latency_rounds
    )
    print(json.dumps(result, indent=2))
    text = section(result)
    print(text)
    if args.write:
        import _sections

        page = ROOT / "docs" / "performance.md"
        page.write_text(_sections.replace_section(page.read_text(encoding="utf-8"), SECTION, text))


if __name__ == "__main__":
    main()
