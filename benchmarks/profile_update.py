"""Where one update's time goes, stage by stage: sampling, each stage's forward (loss), backward, clipping and
optimizer step, the hooks (π_old refresh, target updates) and the trainer's bookkeeping.

Runs the one update sequence (:func:`marlkit.algos.base.run_stages`, the same calls in the same order as
``train_step``) with timing marks around every piece, at paper settings on synthetic data, for any registered
algorithm, and reports each piece's share of the step. Times are *CPU time of this process*
(``time.process_time``) by default, which stays meaningful on a busy machine where wall-clock time is not; on CUDA,
wall time with a synchronize after every piece.

    python benchmarks/profile_update.py --algos omiga,bc --shape halfcheetah-6x1 --updates 200
    python benchmarks/profile_update.py --algos omar --ops 25   # + torch.profiler operator table
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
from marlkit.algos.base import clip_grad_norms_, run_stages, set_grads
from marlkit.data.sampler import DeviceSampler
from marlkit.utils import tune_allocator

CORE = ("forward", "backward", "clip", "optimizer")
"""Forward/backward/optimizer (clipping counts as part of the optimizer step); the rest is overhead."""


def build(name: str, shape: str, device: str, overrides: dict):
    """An algorithm at ``overrides`` on synthetic data of ``shape``, set up, with its sampler."""
    cls = get_algo(name)
    data, spec = synthetic(SHAPES[shape])
    if spec.discrete and not cls.supports_discrete or not spec.discrete and not cls.supports_continuous:
        raise SystemExit(f"{name} does not support the action space of {shape}")
    torch.manual_seed(0)
    algo = cls(spec, cls.Config.from_dict(overrides), device=device)
    sampler = DeviceSampler(data, device, seed=0)
    algo.setup(sampler)
    return algo, sampler


def profile(algo, sampler, updates: int, clock=time.process_time) -> dict[str, float]:
    """Seconds per update of every piece, after a warm-up of ``max(updates // 10, 3)`` updates.

    Keys: ``sample``, ``<stage>/forward``, ``<stage>/backward``, ``<stage>/clip``, ``<stage>/optimizer`` for every
    stage of ``algo.update_stages`` (stages that run every k-th update are averaged over all updates), ``hooks``
    (before_update, the stages' ``after`` hooks, after_step) and ``trainer`` (the training loop's metric sums).
    """
    sync = torch.cuda.synchronize if algo.device.type == "cuda" else (lambda: None)
    totals: dict[str, float] = {"sample": 0.0}
    for st in algo.update_stages:
        totals.update({f"{st.name}/{ph}": 0.0 for ph in CORE})
    totals.update(hooks=0.0, trainer=0.0)
    sums: dict[str, torch.Tensor] = {}
    acc = [False]

    def timed(key: str, fn):
        t0 = clock()
        out = fn()
        sync()
        if acc[0]:
            totals[key] += clock() - t0
        return out

    def loss_fn(stage, batch, carry):
        return timed(f"{stage.name}/forward", lambda: algo.stage_loss(stage, batch, carry))

    def step_fn(stage, loss):
        plan = algo.plan(stage)
        if not plan.params:
            return
        timed(f"{stage.name}/backward",
              lambda: set_grads(plan.params, torch.autograd.grad(loss, plan.params, allow_unused=True)))
        if stage.max_norm > 0 and plan.clip_groups:
            timed(f"{stage.name}/clip", lambda: clip_grad_norms_(plan.clip_groups, stage.max_norm))
        timed(f"{stage.name}/optimizer", lambda: [opt.step() for opt in plan.optimizers])

    def step():
        nonlocal sums
        batch = timed("sample", lambda: algo.sample(sampler, algo._updates))
        pieces = sum(v for k, v in totals.items() if "/" in k)
        t0 = clock()
        metrics = run_stages(algo, batch, loss_fn, step_fn)
        sync()
        if acc[0]:  # what run_stages spent outside the timed pieces: the hooks
            totals["hooks"] += clock() - t0 - (sum(v for k, v in totals.items() if "/" in k) - pieces)
        algo.num_updates += 1

        def bookkeeping():
            for k, v in metrics.items():  # the trainer's running sums (train.iterate)
                sums[k] = sums[k] + v if k in sums else v.detach().clone()
        timed("trainer", bookkeeping)

    for _ in range(max(updates // 10, 3)):
        step()
    acc[0] = True
    for _ in range(updates):
        step()
    return {k: max(v, 0.0) / updates for k, v in totals.items()}


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
    tune_allocator()  # as the training loop does on CPU
    torch.set_num_threads(args.threads)
    overrides = {"hidden": (256, 256), "batch_size": 128}
    if args.smoke:
        overrides, args.updates = {"hidden": (16, 16), "batch_size": 16}, 5
    if args.share_params:
        overrides["share_params"] = True
    clock = time.perf_counter if args.wall or args.device.startswith("cuda") else time.process_time
    for name in args.algos.split(","):
        t = profile(*build(name, args.shape, args.device, overrides), args.updates, clock)
        total = sum(t.values())
        outside = sum(v for k, v in t.items() if k.rpartition("/")[2] not in CORE)
        parts = "  ".join(f"{k} {100 * v / total:4.1f}%" for k, v in t.items() if v > 0)
        print(f"{name:>10} {args.shape} {args.device}:{args.threads}  {1e3 * total:7.2f} ms/update  "
              f"outside fwd/bwd/opt {100 * outside / total:4.1f}%  |  {parts}", flush=True)
    for name in args.algos.split(",") if args.ops > 0 else []:
        print(operator_table(name, args.shape, args.device, max(args.updates // 4, 5), overrides, args.ops))
    return 0


def operator_table(name: str, shape: str, device: str, updates: int, overrides: dict, rows: int) -> str:
    """torch.profiler's table of the ``rows`` most expensive operators (self time) over ``updates`` train steps."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    algo, sampler = build(name, shape, device, overrides)
    for _ in range(5):
        algo.train_step(sampler)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    # no record_shapes: recording the input shapes made every large elementwise operator 10× slower on CPU (a
    # ReLU over [128, 6, 256] 1.9–2.2 ms a call against 0.2 ms without, OMIGA 133–144 against 50 ms per update
    # under the profiler on a busy 2-core AMD EPYC), which buried the matrix products in the table
    with torch_profile(activities=activities) as prof:
        for _ in range(updates):
            algo.train_step(sampler)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    return f"{name} {shape} {device}: {updates} train steps\n{table}"


if __name__ == "__main__":
    sys.exit(main())
