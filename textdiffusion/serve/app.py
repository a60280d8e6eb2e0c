"""The web app (FastAPI): one static page, and a JSON API for the same calls.

    GET  /                     the page (static/index.html + static/app.js, no build step)
    GET  /api/models           the loaded models, their tasks and defaults, and the server's limits
    POST /api/{task}           run a call, answer its result as JSON (task: generate, infill, denoise, style)
    POST /api/{task}/stream    the same call as server-sent events: queued, start, step..., result or error
    POST /api/caption[/stream] the same for an uploaded image (multipart form: image, model, steps, seed, ...)

Errors are JSON `{"error": "..."}` with a 4xx status (5xx for a server fault or a full queue). A streamed call
checks its request before the stream starts, so a bad request gets its status; what the pipeline only finds while
running comes as an `error` event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from textdiffusion.config import SamplerName
from textdiffusion.serve import calls
from textdiffusion.serve.calls import Limits
from textdiffusion.serve.registry import Job, ModelRegistry, ServeError

STATIC = Path(__file__).parent / "static"
CALL_TIMEOUT = 600.0
"""Seconds a JSON call waits for its result (queue included) before answering 504."""


def sse(kind: str, data: dict[str, Any]) -> str:
    """One server-sent event (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


async def stream_events(job: Job) -> AsyncIterator[str]:
    """The job's events as server-sent events until its result or error; a client that goes away cancels it."""
    try:
        while True:
            event = await anyio.to_thread.run_sync(job.next_event, 1.0)
            if event is None:
                yield ": waiting\n\n"  # a comment keeps proxies from closing a queued stream
                continue
            yield sse(*event)
            if event[0] in ("result", "error"):
                return
    finally:
        job.cancel()  # no effect on a finished job; stops a running or queued one


def create_app(registry: ModelRegistry, *, limits: Limits | None = None) -> FastAPI:
    """The app serving the models of `registry` (loaded once, by the caller) within `limits`."""
    limits = limits or Limits()
    app = FastAPI(
        title="textdiffusion",
        summary="Watch diffusion models refine text; the same calls as JSON.",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.registry, app.state.limits = registry, limits

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
            problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        return JSONResponse({"error": "; ".join(problems)}, status_code=422)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        return {
            "models": [m.describe() for m in registry.models.values()],
            "tasks": registry.tasks(),
            "limits": {
                "text_chars": limits.text_chars,
                "steps": limits.steps,
                "samples": limits.samples,
                "image_bytes": limits.image_bytes,
                "image_side": limits.image_side,
            },
        }

    def start(task: str, request: calls.Sampling, prepare: Callable, *extra) -> Job:
        model = registry.get(request.model, task)
        run = prepare(request, *extra, model, limits)  # checks the request: a bad one fails here
        return model.submit(Job(run))

    def answer(job: Job) -> dict[str, Any]:
        return job.wait(CALL_TIMEOUT)

    def streamed(job: Job) -> StreamingResponse:
        return StreamingResponse(
            stream_events(job),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    text_tasks = {
        "generate": (calls.GenerateRequest, calls.prepare_generate),
        "infill": (calls.InfillRequest, calls.prepare_infill),
        "denoise": (calls.DenoiseRequest, calls.prepare_denoise),
        "style": (calls.StyleRequest, calls.prepare_style),
    }
    for task, (schema, prepare) in text_tasks.items():
        _add_text_routes(app, task, schema, prepare, start, answer, streamed)

    def caption_request(
        model: str | None, steps: int | None, seed: int, temperature: float | None, sampler: Any
    ) -> calls.Sampling:
        return calls.Sampling(
            model=model or None, steps=steps, seed=seed, temperature=temperature, sampler=sampler
        )

    async def read_image(request: Request, image: UploadFile) -> bytes:
        declared = int(request.headers.get("content-length") or 0)
        if declared > limits.image_bytes + 1_000_000:  # the form's other fields are small
            raise ServeError(
                f"the upload is {declared:,} bytes; this server takes images of at most "
                f"{limits.image_bytes:,}",
                status=413,
            )
        return await image.read(limits.image_bytes + 1)  # one byte more: too large is seen

    @app.post("/api/caption")
    async def caption(
        request: Request,
        image: UploadFile = File(...),
        model: str | None = Form(None),
        steps: int | None = Form(None),
        seed: int = Form(0),
        temperature: float | None = Form(None),
        sampler: SamplerName | None = Form(None),
    ) -> dict[str, Any]:
        data = await read_image(request, image)
        job = start(
            "caption",
            caption_request(model, steps, seed, temperature, sampler),
            calls.prepare_caption,
            data,
        )
        return await anyio.to_thread.run_sync(answer, job)

    @app.post("/api/caption/stream")
    async def caption_stream(
        request: Request,
        image: UploadFile = File(...),
        model: str | None = Form(None),
        steps: int | None = Form(None),
        seed: int = Form(0),
        temperature: float | None = Form(None),
        sampler: SamplerName | None = Form(None),
    ) -> StreamingResponse:
        data = await read_image(request, image)
        return streamed(
            start(
                "caption",
                caption_request(model, steps, seed, temperature, sampler),
                calls.prepare_caption,
                data,
            )
        )

    return app


def _add_text_routes(app: FastAPI, task, schema, prepare, start, answer, streamed) -> None:
    """POST /api/{task} (JSON answer) and /api/{task}/stream (events) for a request of type `schema` (a function
    of its own, so that each route keeps its own `schema`)."""

    def call(request):
        return answer(start(task, request, prepare))

    def call_stream(request):
        return streamed(start(task, request, prepare))

    # set here, not written as annotations: they would be strings naming a local (postponed evaluation)
    call.__annotations__ = {"request": schema, "return": dict[str, Any]}
    call_stream.__annotations__ = {"request": schema, "return": StreamingResponse}

    app.post(f"/api/{task}", name=task, summary=f"{task} (JSON answer)")(call)
    app.post(f"/api/{task}/stream", name=f"{task}-stream", summary=f"{task} (server-sent events)")(
        call_stream
    )
