"""`textdiffusion serve`: the JSON API and the event stream through FastAPI's test client, on the shipped models
with few steps; the per-model queue; the limits and their JSON errors; the command's own checks."""

from __future__ import annotations

import io
import json
import socket
import sys
import threading

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from textdiffusion.cli import main  # noqa: E402
from textdiffusion.serve import Limits, ModelRegistry, ServeError, create_app  # noqa: E402
from textdiffusion.serve.registry import Job  # noqa: E402

MASK = "\u2591"


@pytest.fixture(scope="module")
def registry():
    registry = ModelRegistry.load(["shakespeare-char", "typo-fixer", "yelp-sentiment"])
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def client(registry):
    return TestClient(create_app(registry))


def events(body: str) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a server-sent event stream; comments skipped."""
    out = []
    for block in body.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if lines:
            kind = next(line[7:] for line in lines if line.startswith("event: "))
            data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
            out.append((kind, json.loads(data)))
    return out


def stream(client, task: str, body: dict) -> list[tuple[str, dict]]:
    with client.stream("POST", f"/api/{task}/stream", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return events(response.read().decode())


def frame_text(frame: dict, row: int = 0) -> str:
    return "".join(text for _, text in frame["rows"][row])


def test_models_lists_tasks_defaults_and_limits(client):
    info = client.get("/api/models").json()
    assert info["tasks"] == [
        "generate",
        "infill",
        "denoise",
        "style",
    ]  # no captioner loaded: no caption
    models = {m["name"]: m for m in info["models"]}
    assert models["shakespeare-char"]["tasks"] == ["generate", "infill"]
    assert (
        models["shakespeare-char"]["max_len"] == 256 and models["shakespeare-char"]["steps"] == 64
    )
    assert models["yelp-sentiment"]["labels"] == ["negative", "positive"]
    assert models["typo-fixer"]["modes"] == ["lines"]  # no lexicon given to this registry
    assert info["limits"]["steps"] == 256 and info["limits"]["text_chars"] == 4000


def test_page_and_script_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "/api/models" in script.text
    schema = client.get("/openapi.json").json()  # the API's documentation, at /api/docs
    assert {"/api/infill", "/api/infill/stream", "/api/caption"} <= set(schema["paths"])
    body = schema["paths"]["/api/infill"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/InfillRequest")


def test_infill_streams_each_step_and_matches_the_json_answer(client):
    body = {"text": "ROMEO: ___ me, ___.", "blank_length": 4, "steps": 4, "seed": 3}
    answer = client.post("/api/infill", json={**body, "include_steps": True})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["text"].startswith("ROMEO: ") and result["lengths"] == [4, 4]
    assert result["text"] == f"ROMEO: {result['fills'][0]} me, {result['fills'][1]}."
    frames = result["steps"]
    assert result["steps_streamed"] == len(frames) == 4
    assert [f["step"] for f in frames] == [1, 2, 3, 4]
    masked = [f["masked"] for f in frames]
    assert masked == sorted(masked, reverse=True) and masked[-1] == 0 and masked[0] > 0
    # the context never changes; masked positions come as runs of mask characters; the last step is the answer
    for frame in frames:
        text = frame_text(frame)
        assert text.startswith("ROMEO: ") and text.count(MASK) == frame["masked"]
        assert all(kind == "m" for kind, t in frame["rows"][0] if MASK in t)
    assert frame_text(frames[-1]) == result["text"]
    assert any(kind == "n" for f in frames[1:] for kind, _ in f["rows"][0])  # revealed this step

    got = stream(client, "infill", body)
    kinds = [k for k, _ in got]
    assert kinds[:2] == ["queued", "start"] and kinds[-1] == "result"
    assert [d for k, d in got if k == "step"] == frames  # same seed, same steps
    assert got[-1][1]["text"] == result["text"]


def test_generate_completes_the_prompt_for_each_sample(client):
    body = {"prompt": "KING:", "length": 24, "n": 2, "steps": 4, "include_steps": True}
    result = client.post("/api/generate", json=body).json()
    assert len(result["texts"]) == 2 and all(t.startswith("KING:") for t in result["texts"])
    first = result["steps"][0]
    assert len(first["rows"]) == 2 and first["positions"] == 2 * 24


def test_denoise_lines_streams_the_model_writing_the_correction(client):
    result = client.post(
        "/api/denoise",
        json={
            "text": "This is a tset of the sytem.",
            "mode": "lines",
            "steps": 8,
            "include_steps": True,
        },
    ).json()
    assert result["mode"] == "lines" and result["steps_streamed"] >= 1
    assert result["text"] == "This is a test of the sytem." and result["changed"] is True
    assert result["steps"][-1]["masked"] == 0
    # with no lexicon, lines is the default mode, and word mode is refused with the reason
    assert client.post("/api/denoise", json={"text": "teh"}).json()["mode"] == "lines"
    refused = client.post("/api/denoise", json={"text": "teh", "mode": "words"})
    assert refused.status_code == 400 and "lexicon" in refused.json()["error"]


def test_denoise_words_mode_uses_the_lexicon_and_streams_progress(registry, tmp_path):
    from textdiffusion.cli.denoise import load_lexicon

    words = tmp_path / "words.txt"
    words.write_text("i 5000\nreceive 900\nthe 9000\nletter 700\nyesterday 600\n")
    model = registry.models["typo-fixer"]
    model.lexicon = load_lexicon(str(words), 2)
    try:
        client = TestClient(create_app(registry))
        assert client.get("/api/models").json()["models"][1]["modes"] == ["words", "lines"]
        got = stream(client, "denoise", {"text": "I recieve teh letter yesterday."})
        result = got[-1][1]
        assert result["mode"] == "words" and result["text"] == "I receive the letter yesterday."
        assert not [k for k, _ in got if k == "step"]  # no sampler: no steps
        refused = client.post("/api/denoise", json={"text": "teh", "mode": "words", "steps": 4})
        assert refused.status_code == 400 and "word mode" in refused.json()["error"]
    finally:
        model.lexicon = None


def test_style_moves_to_a_label(client):
    body = {"text": "the food was cold and the staff was rude .", "to": "positive", "steps": 8}
    result = client.post("/api/style", json={**body, "include_steps": True}).json()
    assert result["to"] == "positive" and result["text"] and result["steps_streamed"] >= 1
    missing = client.post("/api/style", json={"text": "the food was cold ."})
    assert missing.status_code == 400 and "negative, positive" in missing.json()["error"]


@pytest.mark.parametrize(
    "task, body, status, words",
    [
        ("infill", {"text": "x" * 4001 + " ___"}, 413, "at most 4000"),
        ("infill", {"text": "no blank here"}, 400, "no blank"),
        ("infill", {"text": "a ___ b", "steps": 257}, 400, "steps must be in 1..256"),
        ("infill", {"text": "a ___ b", "steps": 0}, 400, "steps must be in 1..256"),
        ("infill", {"text": "a ___ b", "blank_length": 300}, 400, "1..256"),
        ("generate", {"length": 257}, 400, "length must be in 1..256"),
        ("generate", {"n": 5}, 400, "n must be in 1..4"),
        ("generate", {"prompt": "   "}, 400, "prompt is empty"),
        ("generate", {"temperature": -1}, 400, "temperature must be positive"),
        ("generate", {"steps": "many", "colour": 1}, 422, "steps:"),
        ("generate", {"model": "nope"}, 404, "'nope' is not loaded"),
        ("infill", {"model": "typo-fixer", "text": "a ___"}, 400, "does not do infill"),
        ("denoise", {"text": ""}, 400, "text is empty"),
        ("style", {"text": "ok", "to": "angry"}, 400, "to must be one of"),
    ],
)
def test_bad_requests_get_json_errors(client, task, body, status, words):
    for path in (f"/api/{task}", f"/api/{task}/stream"):
        response = client.post(path, json=body)
        assert response.status_code == status, response.text
        assert words in response.json()["error"]


def test_an_error_the_pipeline_finds_while_running_is_an_event(client):
    # a prompt longer than the length is found by the pipeline, after the stream started
    got = stream(client, "generate", {"prompt": "ROMEO: hello there", "length": 8, "steps": 2})
    assert got[-1][0] == "error" and "leaves nothing to generate" in got[-1][1]["error"]
    answer = client.post("/api/generate", json={"prompt": "ROMEO: hello", "length": 8})
    assert answer.status_code == 400 and "leaves nothing" in answer.json()["error"]


def test_concurrent_calls_queue_per_model_and_match_serial_runs(client):
    bodies = [
        {"text": f"ROMEO: ___ {word}.", "blank_length": 5, "steps": 6, "seed": i}
        for i, word in enumerate(["me", "thee", "her", "him"])
    ]
    serial = [client.post("/api/infill", json=b).json()["text"] for b in bodies]
    results: list = [None] * len(bodies)

    def call(i):
        results[i] = stream(client, "infill", bodies[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r[-1][1]["text"] for r in results] == serial  # no call disturbed another
    assert max(r[0][1]["ahead"] for r in results) >= 1  # some waited in the queue


def test_a_model_runs_one_call_at_a_time_and_refuses_a_full_queue(registry):
    model = registry.models["shakespeare-char"]
    release = threading.Event()
    running, most = [0], [0]
    lock = threading.Lock()

    def hold(job):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1
        return {"ok": True}

    jobs = [model.submit(Job(hold)) for _ in range(3)]
    release.set()
    assert [job.wait(30) for job in jobs] == [{"ok": True}] * 3 and most[0] == 1

    from textdiffusion.checkpoint import load_pretrained
    from textdiffusion.serve import ServedModel

    small = ServedModel("tiny-queue", load_pretrained("shakespeare-char"), max_queue=1)
    gate = threading.Event()
    try:
        first = small.submit(Job(lambda job: gate.wait(10) and {}))
        first.events.get(timeout=5)  # queued
        assert first.events.get(timeout=5)[0] == "start"  # the worker took it: the queue is empty
        small.submit(Job(lambda job: {}))  # waits
        with pytest.raises(ServeError, match="busy") as refused:
            small.submit(Job(lambda job: {}))
        assert refused.value.status == 503
    finally:
        gate.set()
        small.close()


def test_a_client_that_goes_away_cancels_its_call(registry):
    import anyio

    from textdiffusion.serve.app import stream_events
    from textdiffusion.serve.calls import InfillRequest, prepare_infill

    model = registry.models["shakespeare-char"]
    request = InfillRequest(text="ROMEO: ___ .", blank_length=64, steps=256)
    job = model.submit(Job(prepare_infill(request, model, Limits())))

    async def read_one_step():
        agen = stream_events(job)
        async for chunk in agen:
            if chunk.startswith("event: step"):
                break
        await agen.aclose()

    anyio.run(read_one_step)
    with pytest.raises(ServeError, match="cancelled"):
        job.wait(30)
    steps = [e for e in list(job.events.queue) if e[0] == "step"]
    assert len(steps) < 255  # stopped early, not after the 256 steps asked for


@pytest.fixture(scope="module")
def caption_model(tmp_path_factory):
    """A captioning model trained for 3 steps: it captions badly, which is all the API needs."""
    from conftest import make_shapes

    from textdiffusion.config import DataConfig, ModelConfig, SampleConfig, TrainConfig
    from textdiffusion.training import train

    root = tmp_path_factory.mktemp("serve-caption")
    table = make_shapes(root, 8)
    out = root / "model"
    train(
        DataConfig(data=(str(table),), valid_fraction=0.25),
        TrainConfig(steps=3, batch_size=4, eval_every=0, save_every=3, log_every=3, device="cpu"),
        out=out,
        task="caption",
        model=ModelConfig(n_layers=1, n_heads=2, dim=32, max_len=32, image_size=16),
        sample=SampleConfig(sampler="confidence", steps=4, threshold=0.9, temperature=0.1),
        progress=False,
    )
    registry = ModelRegistry.load([str(out)])
    yield registry, root
    registry.close()


def png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_caption_takes_an_uploaded_image_within_the_limits(caption_model):
    registry, root = caption_model
    client = TestClient(create_app(registry, limits=Limits(image_side=64, image_bytes=20_000)))
    assert client.get("/api/models").json()["tasks"] == ["caption"]
    image = (root / "img" / "0.png").read_bytes()
    answer = client.post("/api/caption", files={"image": ("0.png", image)}, data={"steps": "4"})
    assert answer.status_code == 200, answer.text
    assert isinstance(answer.json()["text"], str) and answer.json()["steps_streamed"] >= 1
    with client.stream("POST", "/api/caption/stream", files={"image": ("0.png", image)}) as r:
        got = events(r.read().decode())
    assert got[-1][0] == "result" and any(k == "step" for k, _ in got)
    for data, status, words in [
        (png(65, 10), 413, "at most 64 a side"),
        (b"\x89PNG" + bytes(30_000), 413, "at most 20,000"),
        (b"not an image", 400, "not an image"),
    ]:
        refused = client.post("/api/caption", files={"image": ("x.png", data)})
        assert refused.status_code == status and words in refused.json()["error"], refused.text
    refused = client.post("/api/caption", files={"image": ("0.png", image)}, data={"steps": "999"})
    assert refused.status_code == 400 and "steps" in refused.json()["error"]
    assert client.post("/api/caption", data={"steps": "4"}).status_code == 422  # no image


def test_serve_help_and_its_one_line_errors(capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--model", "--host", "--port", "--max-steps", "--lexicon", "--queue"):
        assert flag in out
    assert "127.0.0.1" in out and "8000" in out
    with socket.socket() as taken:  # a port in use fails at once, before any model loads
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit) as exit_:
            main(["serve", "--port", str(taken.getsockname()[1]), "--device", "cpu"])
    assert exit_.value.code == 2 and "cannot listen" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--max-steps", "0"])
    assert "--max-steps 0: must be positive" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the extra were not installed
    with pytest.raises(SystemExit):
        main(["serve"])
    assert "pip install textdiffusion[serve]" in capsys.readouterr().err
