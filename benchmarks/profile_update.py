"""Where one update's time goes: sampling, forward (loss), backward, clipping, optimizer, target updates, trainer.

Runs the default :meth:`Algorithm.update` path phase by phase (same calls, same order as ``train_step`` plus the
trainer's metric accumulation) at paper settings on synthetic data, and reports each phase's share of the step.
Times are *CPU time of this process* (``time.process_time``) by default, which stays meaningful on a busy
machine where wall-clock time is not; on CUDA, wall time with a synchronize after every phase.

    python benchmarks/profile_update.py --algos omiga,bc --shape halfcheetah-6x1 --updates 200
    python benchmarks/profile_update.py --algos omiga --share-params --ops 25   # + torch.profiler operator table
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from update_speed import SHAPES, synthetic

from marlkit.algos import get_algo
from marlkit.algos.base import clip_grad_norms_
from marlkit.data.sampler import DeviceSampler
from marlkit.population import supports_population

PHASES = ("sample", "forward", "backward", "clip", "optimizer", "after_step", "trainer")
CORE = ("forward", "backward", "clip", "optimizer")
"""Forward/backward/optimizer (clipping counts as part of the optimizer step); the rest is overhead."""


def profile(name: str, shape: str, device: str, updates: int, overrides: dict, clock=time.process_time) -> dict:
    """Per-phase seconds per update (dict phase -> s), after a warm-up of ``updates // 10`` steps."""
    cls = get_algo(name)
    if not supports_population(cls):
        raise SystemExit(f"{name} overrides update(); phase profiling needs the compute_loss contract")
    data, spec = synthetic(SHAPES[shape])
    torch.manual_seed(0)
    algo = cls(spec, cls.Config.from_dict(overrides), device=device)
    sampler = DeviceSampler(data, device, seed=0)
    algo.setup(sampler)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    totals = dict.fromkeys(PHASES, 0.0)
    sums: dict[str, torch.Tensor] = {}
    opts = list(algo.optimizers().values())

    def step(acc: bool):
        nonlocal sums
        marks = [clock()]

        def mark():
            sync()
            marks.append(clock())

        batch = sampler.sample(algo.config.batch_size)
        mark()
        loss, metrics = algo.compute_loss(batch)
        mark()
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        mark()
        max_norm = algo.grad_clip_norm()
        if max_norm > 0:
            clip_grad_norms_(algo.grad_clip_groups(), max_norm)
        mark()
        for opt in opts:
            opt.step()
        mark()
        algo.after_step()
        mark()
        algo.num_updates += 1
        for k, v in metrics.items():  # the trainer's running sums (train.iterate)
            sums[k] = sums[k] + v if k in sums else v.detach().clone()
        mark()
        if acc:
            for ph, a, b in zip(PHASES, marks, marks[1:]):
                totals[ph] += b - a

    for _ in range(max(updates // 10, 3)):
        step(False)
    for _ in range(updates):
        step(True)
    return {k: v / updates for k, v in totals.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", default="omiga,bc")
    p.add_argument("--shape", default="halfcheetah-6x1", choices=sorted(SHAPES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--wall", action="store_true", help="wall-clock instead of process CPU time")
    p.add_argument("--smoke", action="store_true", help="tiny networks, a few updates")
    p.add_argument("--share-params", action="store_true",
                   help="one network for all agents with one-hot ids (the official codes' setting)")
    p.add_argument("--ops", type=int, default=0,
                   help="also print the N most expensive operators of train_step (torch.profiler, wall time)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {"hidden": (256, 256), "batch_size": 128}
    if args.smoke:
        overrides, args.updates = {"hidden": (16, 16), "batch_size": 16}, 5
    if args.share_params:
        overrides["share_params"] = True
    clock = time.perf_counter if args.wall or args.device.startswith("cuda") else time.process_time
    for name in args.algos.split(","):
        t = profile(name, args.shape, args.device, args.updates, overrides, clock)
        total = sum(t.values())
        outside = sum(v for k, v in t.items() if k not in CORE)
        parts = "  ".join(f"{k} {100 * v / total:4.1f}%" for k, v in t.items())
        print(f"{name:>8} {args.shape} {args.device}:{args.threads}  {1e3 * total:7.2f} ms/update  "
              f"outside fwd/bwd/opt {100 * outside / total:4.1f}%  |  {parts}", flush=True)
    for name in args.algos.split(",") if args.ops > 0 else []:
        print(operator_table(name, args.shape, args.device, max(args.updates // 4, 5), overrides, args.ops))
    return 0


def operator_table(name: str, shape: str, device: str, updates: int, overrides: dict, rows: int) -> str:
    """torch.profiler's table of the ``rows`` most expensive operators (self time) over ``updates`` train steps
    (any algorithm, including those overriding ``update``)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    cls = get_algo(name)
    data, spec = synthetic(SHAPES[shape])
    torch.manual_seed(0)
    algo = cls(spec, cls.Config.from_dict(overrides), device=device)
    sampler = DeviceSampler(data, device, seed=0)
    algo.setup(sampler)
    for _ in range(5):
        algo.train_step(sampler)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with torch_profile(activities=activities, record_shapes=True) as prof:
        for _ in range(updates):
            algo.train_step(sampler)
    table = prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=rows)
    return f"{name} {shape} {device}: {updates} train steps\n{table}"


if __name__ == "__main__":
    sys.exit(main())
