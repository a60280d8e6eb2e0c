"""Upload a model folder to the Hugging Face hub (`textdiffusion push`, `DiffusionPipeline.push_to_hub`).

Only the model files go up (config.json, model.safetensors, tokenizer.json, and a README.md model card if the folder
has one), never the resumable checkpoints; `from_pretrained("user/name")` then loads the model from the hub.
"""

from __future__ import annotations

import os
from pathlib import Path

from textdiffusion.checkpoint import CONFIG_NAME, TOKENIZER_NAME, WEIGHTS_NAME, read_config

UPLOADED = (CONFIG_NAME, WEIGHTS_NAME, TOKENIZER_NAME, "README.md")


class HubError(ValueError):
    """The model cannot be pushed (offline, not logged in, not a model folder); the message says why in one line."""


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload a textdiffusion model",
) -> str:
    """Upload the model files of `folder` to the hub model repo `repo_id` ("user/name"), creating the repo if it
    does not exist; returns the commit URL. Needs the network and a hub token (`hf auth login`, HF_TOKEN or
    `token`)."""
    folder = Path(folder)
    read_config(folder)  # a model folder, or a clear error naming it
    for name in (WEIGHTS_NAME, TOKENIZER_NAME):
        if not (folder / name).is_file():
            raise HubError(f"{folder} is not a complete model: it has no {name}")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"repo id {repo_id!r} must be USER/NAME (or ORG/NAME)")
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise HubError(
            f"cannot push to {repo_id}: HF_HUB_OFFLINE is set (unset it to reach huggingface.co)"
        )
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            allow_patterns=list(UPLOADED),
            commit_message=commit_message,
        )
    except Exception as exc:  # no network, no or a wrong token, no right to the repo
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise HubError(f"cannot push to {repo_id}: {type(exc).__name__}: {message}") from None
    return commit.commit_url
