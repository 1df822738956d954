"""The HTTP streaming layer's CPU time per streamed chunk, server side and client side, measured.

    VLLM_CHECK_PYTHON=~/.vllmcheck/bin/python uv run python benchmarks/http_stream_cost.py

Runs in the vLLM checker's environment (`../shared/tools/README.md`), which has the packages both
sides use: vLLM's and SGLang's OpenAI servers stream through FastAPI's `StreamingResponse` on uvicorn,
and `vllm bench serve` reads the streams with aiohttp. `benchmarks/vllm_host_cost.py` measures what
vLLM's API server does per token before this layer (its `OutputProcessor` and the chunk's JSON) and
leaves the HTTP framing out; this measures that framing.

A FastAPI app on uvicorn (its own process) serves N concurrent streaming completions; an engine
stand-in ticks every `STEP_S` seconds and every open stream then sends one server-sent-events chunk
of a vLLM `CompletionStreamResponse`'s size (about 230 bytes). The client opens the N streams with
aiohttp and reads them line by line as `vllm bench serve` does (`async_request_openai_completions`:
strip, cut "data: ", parse the JSON, timestamp). Prints, per N, each side's CPU time per chunk (the
process's user + system time over the streaming, divided by the chunks) and the chunks delivered per
second. The figures are this machine's CPU's, as the host-cost benchmarks' are.

Then the intake: `INTAKE` requests sent at once, as a burst sends them (a `vllm bench serve`
completion body with a 219-token prompt, parsed into a pydantic request model as the OpenAI servers
parse theirs, answered at once); prints the server's CPU time per request (connection, HTTP parsing,
validation). Tokenization and the engine's input processing come after it and are not in it.

What they are for: a single front-end process (vLLM 0.13 ran one API server for every DP engine;
SGLang one tokenizer manager) caps the rate tokens reach the client near 1 / (its CPU per token), and
the benchmark client caps it near 1 / (its own).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root
from benchmarks.checker_env import rerun_in_checker

STREAMS = (64, 256, 1024)
STEP_S = 0.05
"""The stand-in engine's step: one token per open stream every 50 ms."""
TOKENS = 60
"""Chunks per stream."""
PORT = 8765
INTAKE = 1000
"""Requests of the intake measurement, sent at once."""

SERVER = """
import asyncio, json, os, sys
import uvicorn
from contextlib import asynccontextmanager
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from typing import Optional

STEP_S, TOKENS = float(sys.argv[2]), int(sys.argv[3])
state = {"tick": None}

async def ticker():
    while True:
        await asyncio.sleep(STEP_S)
        old, state["tick"] = state["tick"], asyncio.Event()
        old.set()

@asynccontextmanager
async def lifespan(app):
    state["tick"] = asyncio.Event()
    task = asyncio.create_task(ticker())
    yield
    task.cancel()

app = FastAPI(lifespan=lifespan)

@app.post("/v1/completions")
async def completions(request: Request):
    rid = (await request.json())["rid"]
    async def chunks():
        for _ in range(TOKENS):
            await state["tick"].wait()
            chunk = {"id": f"cmpl-{rid}", "object": "text_completion", "created": 1733380000,
                     "model": "deepseek-ai/DeepSeek-V3.2",
                     "choices": [{"index": 0, "text": " token", "logprobs": None,
                                  "finish_reason": None, "stop_reason": None}], "usage": None}
            yield f"data: {json.dumps(chunk)}\\n\\n"
        yield "data: [DONE]\\n\\n"
    return StreamingResponse(chunks(), media_type="text/event-stream")

class CompletionRequest(BaseModel):
    model: str
    prompt: str
    max_tokens: int = 16
    temperature: float = 0.0
    stream: bool = False
    ignore_eos: bool = False
    stream_options: Optional[dict] = None

@app.post("/v1/intake")
async def intake(request: CompletionRequest):
    return {"id": "cmpl", "choices": [{"index": 0, "text": ""}]}

@app.get("/cpu")
async def cpu():
    t = os.times()
    return {"cpu": t.user + t.system}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error")
"""


async def _stream(session: object, url: str, rid: str) -> int:
    """One streaming request read as `vllm bench serve` reads it; returns its chunks."""
    chunks = 0
    async with session.post(url, json={"rid": rid, "stream": True}) as response:  # type: ignore[attr-defined]
        async for raw in response.content:
            line = raw.strip()
            if not line:
                continue
            data = line.decode("utf-8").removeprefix("data: ")
            if data == "[DONE]":
                break
            json.loads(data)
            time.perf_counter()
            chunks += 1
    return chunks


async def _measure(streams: int) -> tuple[float, float, float]:
    """(server CPU s per chunk, client CPU s per chunk, chunks delivered per second) at `streams`."""
    import aiohttp

    base = f"http://127.0.0.1:{PORT}"
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=600)
    ) as session:
        async with session.get(f"{base}/cpu") as r:
            server0 = (await r.json())["cpu"]
        client0, start = os.times(), time.perf_counter()
        counts = await asyncio.gather(
            *(_stream(session, f"{base}/v1/completions", f"r{i}") for i in range(streams))
        )
        client1, wall = os.times(), time.perf_counter() - start
        async with session.get(f"{base}/cpu") as r:
            server1 = (await r.json())["cpu"]
    chunks = sum(counts)
    if chunks != streams * TOKENS:
        raise RuntimeError(f"{chunks} chunks of {streams * TOKENS}")
    client = (client1.user + client1.system) - (client0.user + client0.system)
    return (server1 - server0) / chunks, client / chunks, chunks / wall


async def _measure_intake() -> float:
    """Server CPU seconds per request of `INTAKE` completion requests sent at once."""
    import aiohttp

    base = f"http://127.0.0.1:{PORT}"
    body = {
        "model": "deepseek-ai/DeepSeek-V3.2",
        "prompt": " ".join(["word"] * 219),
        "max_tokens": 197,
        "temperature": 0.0,
        "stream": True,
        "ignore_eos": False,
        "stream_options": {"include_usage": True},
    }
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async with session.get(f"{base}/cpu") as r:
            server0 = (await r.json())["cpu"]

        async def one() -> None:
            async with session.post(f"{base}/v1/intake", json=body) as response:
                await response.read()

        await asyncio.gather(*(one() for _ in range(INTAKE)))
        async with session.get(f"{base}/cpu") as r:
            server1 = (await r.json())["cpu"]
    return float(server1 - server0) / INTAKE


def _wait_for_server() -> None:
    import urllib.request

    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/cpu", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def main() -> int:
    rerun = rerun_in_checker("uvicorn", "VLLM_CHECK_PYTHON", __file__)
    if rerun is not None:
        return rerun
    print("streams  server µs/chunk  client µs/chunk  delivered chunks/s")
    for streams in STREAMS:
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(PORT), str(STEP_S), str(TOKENS)])
        try:
            _wait_for_server()
            server_s, client_s, rate = asyncio.run(_measure(streams))
        finally:
            server.terminate()
            server.wait()
        print(f"{streams:7d}  {server_s * 1e6:15.1f}  {client_s * 1e6:15.1f}  {rate:18,.0f}")
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(PORT), str(STEP_S), str(TOKENS)])
    try:
        _wait_for_server()
        intake_s = asyncio.run(_measure_intake())
    finally:
        server.terminate()
        server.wait()
    print(f"intake of {INTAKE} requests at once: {intake_s * 1e3:.2f} ms of server CPU per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
