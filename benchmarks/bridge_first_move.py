"""Bridge's first move as a one-step game, and what exact InSPO (inspo.md Algorithm 1, Eqs. 13–15) does on it.

At Bridge's start the two agents face each other on the bridge; the first joint move picks the convention (both
step left: agent 0 yields; both right: agent 1 yields). :func:`marlkit.exact.first_move_game` turns a dataset into
that one-step game, the frequencies of the first joint moves and the mean discounted return of the episodes behind
each, and :func:`marlkit.exact.exact_inspo` runs Algorithm 1 on it exactly. The script prints, for each dataset,
the table and the probability that the two agents' independently sampled first moves agree after k iterations.

Datasets: marlkit's ``optimal`` builds (version v1, ``--seeds``), the v0 construction (the "far" route only, the
yielder alternating: exactly balanced, rebuilt here from :class:`marlkit.envs.bridge.YieldPolicy`), and any .h5
file given with ``--file`` (e.g. AlberDICE's own ``buffer_optimal`` replayed through marlkit's Bridge).

    python benchmarks/bridge_first_move.py --seeds 0-4 --alphas 0.01,0.1 --beta 0.01
"""

from __future__ import annotations

import argparse

from marlkit.cli import parse_int_list
from marlkit.data.hdf5 import load_hdf5
from marlkit.data.rollout import collect
from marlkit.data.views import concat
from marlkit.envs.bridge import BridgeEnv, YieldPolicy
from marlkit.exact import exact_inspo, first_move_game

LEFT, RIGHT = 4, 3
CHECKPOINTS = (1, 10, 25, 50, 100, 200, 400)


def v0_optimal(episodes: int = 500):
    """The v0 ``optimal`` data: the "far" route, each agent yielding in exactly half of the episodes."""
    env = BridgeEnv()
    return concat([collect(env, YieldPolicy("far", who), episodes=episodes // 2) for who in (0, 1)], name="v0")


def report(name: str, dataset, alphas: list[float], beta: float, iterations: int) -> None:
    payoff, table = first_move_game(dataset)
    print(f"{name}: d(left, left) = {table[LEFT, LEFT]:.3f}, d(right, right) = {table[RIGHT, RIGHT]:.3f}; "
          f"in-sample return {payoff[LEFT, LEFT]:.4f} / {payoff[RIGHT, RIGHT]:.4f}")
    ks = [k for k in CHECKPOINTS if k <= iterations]
    for alpha in alphas:
        p = exact_inspo(payoff, table, alpha=alpha, beta=beta, iterations=iterations, seed=0).policies
        agree = [p[k, 0, LEFT] * p[k, 1, LEFT] + p[k, 0, RIGHT] * p[k, 1, RIGHT] for k in ks]
        print(f"  α = {alpha:g}, β = {beta:g}: P(first moves agree) at iterations {', '.join(map(str, ks))}: "
              f"{' '.join(f'{a:.3f}' for a in agree)}; π^0(left) = {p[-1, 0, LEFT]:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0-4", help="seeds of marlkit's optimal builds, e.g. 0-4")
    parser.add_argument("--alphas", default="0.01,0.1", help="comma-separated α of InSPO")
    parser.add_argument("--beta", type=float, default=0.01, help="InSPO's entropy temperature β (constant)")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--file", action="append", default=[], help="an .h5 dataset of Bridge (repeatable)")
    args = parser.parse_args(argv)
    alphas = [float(a) for a in args.alphas.split(",")]
    report("v0 (far route, alternating)", v0_optimal(), alphas, args.beta, args.iterations)
    for seed in parse_int_list(args.seeds):
        report(f"v1 seed {seed}", BridgeEnv().make_dataset("optimal", seed=seed), alphas, args.beta, args.iterations)
    for path in args.file:
        report(path, load_hdf5(path), alphas, args.beta, args.iterations)


if __name__ == "__main__":
    main()
