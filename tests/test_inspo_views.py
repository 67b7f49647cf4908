"""Notebook 04's plain functions: the α/β slider callback, trajectory plots and the CLI comparison table."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from marlkit.envs.matrix import make_game
from marlkit.eval.plots import inspo_view, plot_policy_trajectories
from marlkit.eval.tables import cli_record, pivot_returns, registered


def test_inspo_view_slider_callback():
    """The slider callback redraws exact InSPO; with β annealed from 10 it reaches (C, C) on M-NE imbalanced,
    and with β = 0 it stays at (A, A)."""
    game = make_game("mne")
    fig, ret = inspo_view(game, "imbalanced", alpha=0.01, beta=10.0, beta_final=0.01, iterations=40)
    assert ret == pytest.approx(20.0, abs=0.01)
    plt.close(fig)
    fig, ret = inspo_view(game, "imbalanced", alpha=0.01, beta=0.0, beta_final=None, iterations=40)
    assert ret == pytest.approx(5.0, abs=0.01)
    plt.close(fig)


def test_plot_policy_trajectories_checks_shape():
    fig = plot_policy_trajectories(np.full((5, 2, 3), 1 / 3), ["A", "B", "C"])
    assert len(fig.axes) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="K, N, A"):
        plot_policy_trajectories(np.ones((5, 3)), ["A", "B", "C"])


def test_pivot_returns_and_registry_filter():
    df = pd.DataFrame({"env": ["xor"] * 4, "dataset": ["a", "a", "b", "b"], "algo": ["bc", "inspo"] * 2,
                       "seed": 0, "return": [0.0, 1.0, 0.22, 0.99]})
    wide = pivot_returns(df)
    assert list(wide.columns) == ["bc", "inspo"]
    assert wide.loc[("xor", "b"), "inspo"] == pytest.approx(0.99)
    assert registered(["bc", "no-such-algo", "inspo"]) == ["bc", "inspo"]


def test_cli_record_reports_failures():
    """A failing command raises with the CLI's own message (here: an unknown algorithm)."""
    with pytest.raises(RuntimeError, match="unknown algo"):
        cli_record("xor", "b", "no-such-algo", steps=1, in_process=False)
