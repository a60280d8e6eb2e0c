"""`textdiffusion serve`: a small web app to watch the models refine text, and a JSON API for the same calls.

Needs the `serve` extra (`pip install textdiffusion[serve]`: FastAPI, uvicorn, python-multipart, Pillow); the CLI
imports this package only when the command runs.
"""

from textdiffusion.serve.app import create_app
from textdiffusion.serve.calls import Limits
from textdiffusion.serve.registry import ModelRegistry, ServedModel, ServeError

__all__ = ["Limits", "ModelRegistry", "ServeError", "ServedModel", "create_app"]
