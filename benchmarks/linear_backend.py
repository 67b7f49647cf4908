"""oneDNN against MKL for marlkit's large CPU linear layers, on this CPU, side by side in one process.

:func:`marlkit.nets.mlp.onednn_linear` chooses the backend of every float32 CPU linear layer of width ≥ 128
(default: oneDNN on non-Intel x86 CPUs with AVX-512, MKL elsewhere). This script measures what that choice is
worth here, process CPU time, one thread by default:

1. the three products of one paper-size layer (``[B·N, 256] × [256, 256]``): forward ``x Wᵀ``, input gradient
   ``g W`` and weight gradient ``gᵀ x`` (batch 128), ``--calls`` calls each, the backends alternating
   ``--repeats`` times;
2. whole updates of ``--algos`` at ``--shape`` with shared networks (the setting whose layers take that path),
   in alternating blocks of ``--block`` updates, reported as oneDNN's time over MKL's per block pair.

    python benchmarks/linear_backend.py
    python benchmarks/linear_backend.py --algos omiga,comadice --blocks 5 --block 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_update import build
from update_speed import SHAPES
from vs_official import time_block

from marlkit.nets.mlp import _LINEAR_POINTWISE, onednn_linear
from marlkit.utils import cpu_info, tune_allocator


def cpu_ms(fn, calls: int) -> float:
    """Process CPU ms per call of ``fn`` over ``calls`` calls (:func:`vs_official.time_block`)."""
    return time_block(fn, calls)[0] * 1e3


def products(rows: int, width: int, calls: int, repeats: int) -> None:
    """Step 1: the forward, input-gradient and weight-gradient products, the backends alternating per repeat."""
    x, g, w = torch.randn(rows, width), torch.randn(rows, width), torch.randn(width, width) / width ** 0.5
    pairs = {
        "forward x Wᵀ": (lambda: _LINEAR_POINTWISE(x, w, None, "none", [], ""), lambda: torch.mm(x, w.t())),
        "input grad g W": (lambda: _LINEAR_POINTWISE(g, w.t(), None, "none", [], ""), lambda: torch.mm(g, w)),
        "weight grad gᵀ x": (lambda: _LINEAR_POINTWISE(g.t(), x.t(), None, "none", [], ""),
                             lambda: torch.mm(g.t(), x)),
    }
    print(f"products [{rows}, {width}] x [{width}, {width}], ms per call (oneDNN / MKL), {repeats} repeats:")
    for name, (onednn, mkl) in pairs.items():
        onednn(), mkl()  # warm-up
        a, b = [], []
        for _ in range(repeats):
            a.append(cpu_ms(onednn, calls))
            b.append(cpu_ms(mkl, calls))
        print(f"  {name:18s} oneDNN {min(a):.3f}–{max(a):.3f}   MKL {min(b):.3f}–{max(b):.3f}")


def updates(name: str, shape: str, blocks: int, block: int) -> None:
    """Step 2: whole updates in alternating blocks (after a warm-up pair), the backend switched between blocks."""
    algo, sampler = build(name, shape, "cpu", {"share_params": True})
    batches = [algo.sample(sampler, i) for i in range(32)]
    done = [0]

    def run() -> None:
        algo.update(batches[done[0] % 32])
        done[0] += 1

    old = onednn_linear()
    times = {True: [], False: []}
    try:
        for use in (True, False):  # warm-up pair
            onednn_linear(use)
            cpu_ms(run, block)
        for k in range(blocks):
            for use in ((False, True) if k % 2 == 0 else (True, False)):
                onednn_linear(use)
                times[use].append(cpu_ms(run, block))
    finally:
        onednn_linear(old)
    ratios = [a / b for a, b in zip(times[True], times[False])]
    print(f"{name} {shape} (shared networks): oneDNN {statistics.median(times[True]):.2f} ms, "
          f"MKL {statistics.median(times[False]):.2f} ms per update; oneDNN / MKL median "
          f"{statistics.median(ratios):.2f} [{min(ratios):.2f}–{max(ratios):.2f}] over {blocks} block pairs")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", default="omiga")
    p.add_argument("--shape", default="halfcheetah-6x1", choices=sorted(SHAPES))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--block", type=int, default=20)
    args = p.parse_args(argv)
    if _LINEAR_POINTWISE is None or not torch.backends.mkldnn.is_available():
        print("linear_backend: this PyTorch build has no oneDNN linear; nothing to compare", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    tune_allocator()
    flags = cpu_info("flags").split()
    print(f"CPU: {cpu_info('model name') or 'unknown'} ({cpu_info('vendor_id') or 'unknown vendor'}; "
          f"AVX-512: {'avx512f' in flags}); torch {torch.__version__}, {args.threads} thread(s); "
          f"marlkit default backend here: {'oneDNN' if onednn_linear() else 'MKL'}")
    products(128 * SHAPES[args.shape]["n_agents"], 256, args.calls, args.repeats)  # batch 128 × agents
    for name in args.algos.split(","):
        updates(name.strip(), args.shape, args.blocks, args.block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
