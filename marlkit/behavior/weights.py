"""The shipped behavior policies of multi-agent MuJoCo: where their weights and cards live, and loading them.

A task's actors (``random``, ``medium``, ``expert``, ``replay_k``) are stored in one safetensors file
(``{name}.{parameter}`` keys) next to a JSON card (training configuration, levels, measured returns) under
:func:`weights_dir`; :mod:`marlkit.behavior.td3` writes them, :mod:`marlkit.envs.mamujoco` and
:mod:`marlkit.data.build` read them through this module, which depends only on :mod:`marlkit.nets`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file

from marlkit.nets.mlp import mlp_layers

__all__ = ["JointActor", "load_card", "load_policies", "weights_dir", "weights_path"]


def weights_dir() -> Path:
    """Directory of the shipped behavior weights (``marlkit/behavior_weights``)."""
    return Path(__file__).resolve().parent.parent / "behavior_weights"


def weights_path(task: str, suffix: str, directory: Path | str | None = None) -> Path:
    """``{directory}/{task}{suffix}``: the weights (``.safetensors``) or card (``.json``) of ``task``'s behavior
    policies; ``directory`` defaults to :func:`weights_dir`."""
    return Path(directory or weights_dir()) / f"{task}{suffix}"


class JointActor(nn.Module):
    """Deterministic joint policy a = tanh(MLP(s)): ``[B, state_dim] -> [B, act_dim]`` in [-1, 1]."""

    def __init__(self, state_dim: int, act_dim: int, hidden: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.state_dim, self.act_dim, self.hidden = state_dim, act_dim, tuple(hidden)
        self.net = mlp_layers([state_dim, *hidden, act_dim], None)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(s))


def load_card(task: str, directory: Path | None = None) -> dict:
    """The JSON card of ``task``'s shipped behavior policies.

    Raises:
        FileNotFoundError: if no weights were shipped for ``task``.
    """
    path = weights_path(task, ".json", directory)
    if not path.exists():
        raise FileNotFoundError(f"no behavior weights for {task!r} (looked for {path}); train them with "
                                f"`python -m marlkit.behavior.td3 --task {task}`")
    return json.loads(path.read_text())


def load_policies(task: str, directory: Path | None = None) -> dict[str, JointActor]:
    """All saved actors of ``task`` by name (``random``, ``medium``, ``expert``, ``replay_k``)."""
    card = load_card(task, directory)
    tensors = load_file(str(weights_path(task, ".safetensors", directory)))
    hidden = tuple(card["config"]["actor_hidden"])
    groups: dict[str, dict] = {}
    for key, v in tensors.items():
        name, p = key.split(".", 1)
        groups.setdefault(name, {})[p] = v
    out = {}
    for name, sd in groups.items():
        actor = JointActor(card["state_dim"], card["act_dim"], hidden)
        actor.load_state_dict(sd)
        actor.eval()
        out[name] = actor
    return out
