"""Environments: one interface (:mod:`marlkit.envs.base`), matrix games, and the registry."""

from marlkit.envs.base import EnvSpec, MultiAgentEnv, StepResult
from marlkit.envs.matrix import MatrixDataset, MatrixGame, expected_return, make_game
from marlkit.envs.registry import UnknownNameError, list_envs, load_dataset, make_env

__all__ = ["EnvSpec", "MultiAgentEnv", "StepResult", "MatrixGame", "MatrixDataset", "expected_return", "make_game",
           "make_env", "list_envs", "load_dataset", "UnknownNameError"]
