"""Updates per second of every marlkit algorithm at paper settings, on synthetic data of two task shapes.

Shapes (batch 128, hidden (256, 256) = 3-layer MLPs, Adam):
- ``halfcheetah-6x1``: continuous, 6 agents, per-agent obs 9 (padded), action 1, state 17;
- ``5m_vs_6m``: discrete, 5 agents, obs 55, 12 actions, state 98.

Each (algorithm, shape, device, threads) cell reports the median over ``--repeats`` timed blocks of
``--updates`` updates, after a warm-up block. The same run times a straightforward per-agent Python-loop
OMIGA (``omiga_loop.py``: one set of networks per agent, one optimizer step per agent network) so the gain of
batching the agent dimension is a ratio measured side by side.

    python benchmarks/update_speed.py                  # full table -> benchmarks/RESULTS.md
    python benchmarks/update_speed.py --smoke          # tiny sizes, a few updates (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from marlkit import __version__  # noqa: E402
from marlkit.algos import ALGOS, get_algo  # noqa: E402
from marlkit.data.dataset import MultiAgentDataset  # noqa: E402
from marlkit.data.sampler import DeviceSampler  # noqa: E402
from marlkit.envs.base import EnvSpec  # noqa: E402

SHAPES = {
    "halfcheetah-6x1": dict(n_agents=6, obs_dim=9, state_dim=17, act_dim=1),
    "5m_vs_6m": dict(n_agents=5, obs_dim=55, state_dim=98, n_actions=12),
}


def synthetic(shape: dict, T: int = 20_000, episode_len: int = 1000, seed: int = 0):
    """Random data of the given shapes (valid episodes, all actions available)."""
    rng = np.random.default_rng(seed)
    N, O, S = shape["n_agents"], shape["obs_dim"], shape["state_dim"]
    starts = np.zeros(T, bool)
    starts[::episode_len] = True
    ends = np.roll(starts, -1)
    fields = dict(observations=rng.normal(size=(T, N, O)), states=rng.normal(size=(T, S)),
                  rewards=rng.normal(size=T), next_observations=rng.normal(size=(T, N, O)),
                  next_states=rng.normal(size=(T, S)), terminals=np.zeros(T, bool), timeouts=ends,
                  episode_starts=starts)
    if "n_actions" in shape:
        A = shape["n_actions"]
        fields["actions"] = rng.integers(0, A, size=(T, N))
        fields["avail_actions"] = np.ones((T, N, A), bool)
        fields["next_avail_actions"] = np.ones((T, N, A), bool)
        spec = EnvSpec("synthetic", N, O, S, n_actions=A)
    else:
        fields["actions"] = rng.uniform(-1, 1, size=(T, N, shape["act_dim"]))
        spec = EnvSpec("synthetic", N, O, S, act_dim=shape["act_dim"])
    return MultiAgentDataset(**fields, meta={"n_actions": shape.get("n_actions")}), spec


def time_updates(step, updates: int, repeats: int, sync) -> float:
    """Median seconds per update over ``repeats`` blocks (one warm-up block first)."""
    for _ in range(max(updates // 10, 3)):
        step()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(updates):
            step()
        sync()
        times.append((time.perf_counter() - t0) / updates)
    return statistics.median(times)


def bench_algo(name: str, shape_name: str, device: str, threads: int, updates: int, repeats: int, overrides: dict):
    shape = SHAPES[shape_name]
    cls = get_algo(name)
    data, spec = synthetic(shape)
    if spec.discrete and not cls.supports_discrete or not spec.discrete and not cls.supports_continuous:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    algo = cls(spec, cls.Config.from_dict(overrides), device=device)
    sampler = DeviceSampler(data, device, seed=0)
    algo.setup(sampler)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return time_updates(lambda: algo.train_step(sampler), updates, repeats, sync)


def bench_loop_omiga(shape_name: str, device: str, threads: int, updates: int, repeats: int, overrides: dict):
    from omiga_loop import LoopOMIGA

    data, spec = synthetic(SHAPES[shape_name])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    algo = LoopOMIGA(spec, hidden=overrides.get("hidden", (256, 256)), device=device)
    sampler = DeviceSampler(data, device, seed=0)
    batch_size = overrides.get("batch_size", 128)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return time_updates(lambda: algo.update(sampler.sample(batch_size)), updates, repeats, sync)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu} ({os.cpu_count()} logical CPUs){gpu}"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", default=",".join(sorted(ALGOS)), help="comma-separated algorithm names")
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--threads", default="1,2", help="CPU thread counts to time")
    p.add_argument("--updates", type=int, default=200, help="updates per timed block")
    p.add_argument("--repeats", type=int, default=3, help="timed blocks (median reported)")
    p.add_argument("--smoke", action="store_true", help="tiny networks and a few updates (CI smoke test)")
    p.add_argument("--json", default=None, help="write raw results here")
    p.add_argument("--markdown", default=None, help="write the results table here (e.g. benchmarks/RESULTS.md)")
    args = p.parse_args(argv)

    overrides = {"hidden": (256, 256), "batch_size": 128}
    if args.smoke:
        overrides = {"hidden": (16, 16), "batch_size": 16}
        args.updates, args.repeats = 3, 1
    devices = [("cpu", int(t)) for t in args.threads.split(",")]
    if torch.cuda.is_available():
        devices.append(("cuda", 1))
    rows = []
    for shape in args.shapes.split(","):
        for device, threads in devices:
            for name in args.algos.split(","):
                sec = bench_algo(name, shape, device, threads, args.updates, args.repeats, overrides)
                if sec is not None:
                    rows.append(dict(algo=name, shape=shape, device=device, threads=threads, ms=sec * 1e3))
                    print(f"{shape:>16} {device}:{threads} {name:>10}: {sec * 1e3:8.2f} ms/update", flush=True)
            if "omiga" in ALGOS and "omiga" in args.algos.split(","):
                sec = bench_loop_omiga(shape, device, threads, args.updates, args.repeats, overrides)
                rows.append(dict(algo="omiga (per-agent loop)", shape=shape, device=device, threads=threads,
                                 ms=sec * 1e3))
                print(f"{shape:>16} {device}:{threads} {'omiga-loop':>10}: {sec * 1e3:8.2f} ms/update", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if args.markdown:
        write_markdown(rows, args, Path(args.markdown))
    return 0


def write_markdown(rows, args, path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame(rows)
    df["updates/s"] = 1e3 / df["ms"]
    df["cell"] = df.apply(lambda r: f"{r['ms']:.2f} ms ({r['updates/s']:.0f}/s)", axis=1)
    df["column"] = df["device"] + ":" + df["threads"].astype(str) + " thr"
    lines = ["# Update speed", "",
             f"Machine: {machine()}. torch {torch.__version__}, marlkit {__version__} (commit {git_commit()}), "
             f"Python {platform.python_version()}.", "",
             "Command: `python benchmarks/update_speed.py " + " ".join(sys.argv[1:]) + "`", "",
             f"Synthetic data, batch {128 if not args.smoke else 16}, hidden (256, 256), separate per-agent "
             f"parameters, median of {args.repeats} blocks of {args.updates} updates.", ""]
    for shape, sub in df.groupby("shape", sort=False):
        table = sub.pivot(index="algo", columns="column", values="cell")
        lines += [f"## {shape}", "", table.to_markdown(), ""]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
