"""Local Hugging Face checkpoints: checked, loaded and saved without the network.

Shared by the transformers models of :mod:`audit.models` (``vit``/``vit-lora``,
``tiny-lm``/``tiny-lm-lora``). Nothing is ever downloaded: ``from_pretrained`` runs with
``local_files_only=True``, and every failure (no directory, no or unreadable
``config.json``, another ``model_type``, missing weights) is an
:class:`~audit.core.errors.InvalidParameterError` naming the ``checkpoint`` parameter.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audit.core.errors import InvalidParameterError, invalid


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """transformers' progress bars off (saving and loading), restored after."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def bad_checkpoint(owner: str, constraint: str, checkpoint: str, why: str = "") -> InvalidParameterError:
    return InvalidParameterError(
        f"The 'checkpoint' parameter of {owner} must be {constraint}. "
        f"Got {checkpoint!r}{' (' + why + ')' if why else ''} instead."
    )


def checkpoint_dir(checkpoint: Any, *, owner: str, model_type: str, family: str) -> Path:
    """The local checkpoint directory ``checkpoint``, checked: it exists, holds a readable
    config.json, of ``model_type`` (errors name the ``checkpoint`` parameter)."""
    if not isinstance(checkpoint, (str, Path)):
        raise invalid("checkpoint", owner, "a str (a local checkpoint directory) or None", checkpoint)
    path = Path(checkpoint).expanduser()
    if not path.is_dir():
        raise bad_checkpoint(owner, "an existing local directory (written by save_checkpoint)", str(checkpoint),
                              "no such directory")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise bad_checkpoint(owner, "a checkpoint directory holding config.json", str(checkpoint), "no config.json")
    try:
        found = json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as e:
        raise bad_checkpoint(owner, "a directory with a readable config.json", str(checkpoint), str(e)) from None
    if found != model_type:
        raise bad_checkpoint(owner, f"a {family} checkpoint (model_type {model_type!r})", str(checkpoint),
                              f"model_type={found!r}")
    return path


def load_pretrained(cls, path: Path, config, *, owner: str, checkpoint: Any, what: str):
    """``cls.from_pretrained`` from the local ``path`` (eager attention, float32, no
    progress bars); a checkpoint that fails to load or lacks weights is a clear error."""
    try:
        with quiet_progress():
            model, info = cls.from_pretrained(
                str(path), config=config, local_files_only=True, attn_implementation="eager",
                dtype=torch.float32, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise bad_checkpoint(owner, f"a loadable checkpoint of {what}", str(checkpoint),
                              str(e).splitlines()[0]) from None
    missing = list(info.get("missing_keys", ())) + list(info.get("mismatched_keys", ()))
    if missing:
        raise bad_checkpoint(owner, f"a checkpoint with every weight of {what}", str(checkpoint),
                              f"lacks {', '.join(map(str, missing[:3]))}{' ...' if len(missing) > 3 else ''}")
    return model


def save_base(model: nn.Module, pretrained, path, *, what: str) -> Path:
    """``pretrained.save_pretrained(path)`` for a ``model`` without LoRA (the base is saved
    before LoRA is injected), without progress bars; returns the directory."""
    if model.has_lora:
        raise InvalidParameterError(
            f"The 'model' parameter of save_checkpoint must be {what} without LoRA (save the base "
            "before injecting LoRA). Got a model with LoRA adapters instead.")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_progress():
        pretrained.save_pretrained(str(out))
    return out
