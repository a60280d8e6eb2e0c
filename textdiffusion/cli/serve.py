"""`textdiffusion serve`: a web page to run the models and watch their refinement live, and a JSON API.

The web framework (FastAPI, uvicorn: the `serve` extra) is imported when the command runs, so `textdiffusion --help`
works without it.
"""

from __future__ import annotations

import dataclasses
import sys

import tyro

SHIPPED = ("shakespeare-char", "typo-fixer", "yelp-sentiment")
EXTRA = ("fastapi", "uvicorn", "python_multipart", "PIL")


@dataclasses.dataclass
class ServeArgs:
    model: tyro.conf.UseAppendAction[tuple[str, ...]] = ()
    """Model to serve, repeatable: shipped name, local folder or Hugging Face hub id (default: the shipped
    shakespeare-char, typo-fixer and yelp-sentiment). Each is loaded once; its calls run one at a time, in order."""
    host: str = "127.0.0.1"
    """Address to listen on. The default answers this machine only; 0.0.0.0 opens it to the network (there is no
    authentication)."""
    port: int = 8000
    """Port to listen on."""
    device: str = "auto"
    """cpu, cuda or auto."""
    lexicon: str = "english"
    """Lexicon of the denoise page's word mode ('english', a `word count` file, or 'none': whole lines only); as
    `textdiffusion denoise --lexicon`."""
    edit_distance: int = 3
    """Lexicon candidates lie within this many edits of a word."""
    max_chars: int = 4000
    """Longest text (or prompt) a request may send, in characters."""
    max_steps: int = 256
    """Most refinement steps a request may ask for."""
    max_samples: int = 4
    """Most texts one generate request may ask for."""
    max_image_mb: float = 10.0
    """Largest image upload (captioning), in megabytes."""
    max_image_side: int = 8000
    """Largest image side (captioning), in pixels."""
    queue: int = 8
    """Requests that may wait for each model; more are refused (503) until it catches up."""
    threads: int | None = None
    """CPU threads for torch (default: torch's choice)."""


def missing_extra() -> list[str]:
    """The modules of the `serve` extra that cannot be imported."""
    import importlib

    missing = []
    for name in EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def serve(args: ServeArgs) -> None:
    """Serve a web page (and a JSON API) that runs the models and streams their refinement live."""
    import socket

    from textdiffusion.cli.common import CLIError, resolve_device

    missing = missing_extra()
    if missing:
        raise CLIError(
            f"`textdiffusion serve` needs the serve extra (missing {', '.join(missing)}): "
            "pip install textdiffusion[serve]"
        )
    for flag, value in (
        ("--max-chars", args.max_chars),
        ("--max-steps", args.max_steps),
        ("--max-samples", args.max_samples),
        ("--max-image-side", args.max_image_side),
        ("--queue", args.queue),
        ("--max-image-mb", args.max_image_mb),
    ):
        if value <= 0:
            raise CLIError(f"{flag} {value}: must be positive")
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port {args.port}: must be in 0..65535")
    if args.threads is not None and args.threads < 1:
        raise CLIError(f"--threads {args.threads}: must be at least 1")
    device = resolve_device(args.device)
    # bind first: a port in use fails now, in one line, not after the models load
    try:
        infos = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise CLIError(
            f"cannot listen on --host {args.host} --port {args.port}: {exc.strerror or exc}"
        ) from None
    port = sock.getsockname()[1]
    try:
        _run(args, sock, device, port)
    finally:
        sock.close()


def _run(args: ServeArgs, sock, device: str, port: int) -> None:
    import torch
    import uvicorn

    from textdiffusion.checkpoint import CheckpointError
    from textdiffusion.cli.common import CLIError
    from textdiffusion.cli.denoise import load_lexicon
    from textdiffusion.serve import Limits, ModelRegistry, ServeError, create_app

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        registry = ModelRegistry.load(args.model or SHIPPED, device=device, max_queue=args.queue)
    except (CheckpointError, ServeError) as exc:
        raise CLIError(str(exc)) from None
    denoisers = [m for m in registry.models.values() if "denoise" in m.tasks]
    if denoisers:
        lexicon = load_lexicon(args.lexicon, args.edit_distance)  # once, shared
        for model in denoisers:
            model.lexicon = lexicon
    limits = Limits(
        text_chars=args.max_chars,
        steps=args.max_steps,
        samples=args.max_samples,
        image_bytes=int(args.max_image_mb * 1_000_000),
        image_side=args.max_image_side,
    )
    app = create_app(registry, limits=limits)
    for model in registry.models.values():
        print(f"{model.name}: {', '.join(model.tasks)}", file=sys.stderr)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving on http://{host}:{port}/ (JSON API: /api/docs; Ctrl-C stops)", file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: --host {args.host} lets other machines use this server (no authentication)",
            file=sys.stderr,
        )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        registry.close()
