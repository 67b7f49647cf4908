"""Updates per second of every marlkit algorithm at paper settings, on synthetic data of two task shapes.

Shapes (batch 128, hidden (256, 256) = 3-layer MLPs, Adam):
- ``halfcheetah-6x1``: continuous, 6 agents, per-agent obs 9 (padded), action 1, state 17;
- ``5m_vs_6m``: discrete, 5 agents, obs 55, 12 actions, state 98.

Each (algorithm, shape, device, threads) cell reports the median over ``--repeats`` timed blocks of
``--updates`` updates, after a warm-up block. The same run times a straightforward per-agent Python-loop
OMIGA (``omiga_loop.py``: one set of networks per agent, one optimizer step per agent network) so the gain of
batching the agent dimension is a ratio measured side by side.

Against OMIGA (``--vs-omiga SHAPE``): every algorithm's update timed in alternating blocks with OMIGA's in the same
process, with its FLOPs per update, achieved GFLOP/s and its arithmetic floor at this machine's measured GEMM rate.
The comparison with the authors' official code is measured side by side by ``benchmarks/vs_official.py``
(``--vs-official-md`` adds its markdown).

Population rows (``--population K``, default 8): K runs with different seeds trained as one vectorized population
(:mod:`marlkit.population`, every algorithm) against the same K runs trained one after another, timed in
alternating blocks in the same process; reported per run (ms of one member's update = block time / (K · updates)).
``--compile ALGOS`` adds rows through ``torch.compile``; ``benchmarks/gpu.sh`` runs the accelerator table.

    python benchmarks/update_speed.py                  # full table -> benchmarks/RESULTS.md
    python benchmarks/update_speed.py --smoke          # tiny sizes, a few updates (CI)
    python benchmarks/update_speed.py --cpu-time       # process CPU time instead of wall time (busy machines)
    python benchmarks/update_speed.py --data-json benchmarks/results/data_build.json --markdown benchmarks/RESULTS.md
                                                       # also the data-build section (benchmarks/data_build.py)
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
from marlkit.data.sampler import DeviceSampler
from marlkit.utils import cpu_info, tune_allocator  # noqa: E402
from marlkit.envs.base import EnvSpec  # noqa: E402

SHAPES = {
    "halfcheetah-6x1": dict(n_agents=6, obs_dim=9, state_dim=17, act_dim=1),
    "5m_vs_6m": dict(n_agents=5, obs_dim=55, state_dim=98, n_actions=12),
    "ant-2x4": dict(n_agents=2, obs_dim=63, state_dim=105, act_dim=4),
}
TABLE_SHAPES = ("halfcheetah-6x1", "5m_vs_6m")
"""Shapes of the all-algorithm table (``ant-2x4`` serves ``benchmarks/vs_official.py``)."""

def synthetic(shape: dict, T: int = 20_000, episode_len: int = 1000, seed: int = 0):
    """Random data of the given shapes (valid episodes stored in order, all actions available)."""
    rng = np.random.default_rng(seed)
    N, O, S = shape["n_agents"], shape["obs_dim"], shape["state_dim"]
    starts = np.zeros(T, bool)
    starts[::episode_len] = True
    ends = np.roll(starts, -1)
    obs, states = rng.normal(size=(T + 1, N, O)), rng.normal(size=(T + 1, S))  # row t+1 follows row t
    fields = dict(observations=obs[:-1], states=states[:-1], rewards=rng.normal(size=T),
                  next_observations=obs[1:], next_states=states[1:], terminals=np.zeros(T, bool), timeouts=ends,
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


CLOCK = time.perf_counter


def time_updates(step, updates: int, repeats: int, sync) -> float:
    """Median seconds per update over ``repeats`` blocks (one warm-up block first)."""
    for _ in range(max(updates // 10, 3)):
        step()
    sync()
    times = []
    for _ in range(repeats):
        t0 = CLOCK()
        for _ in range(updates):
            step()
        sync()
        times.append((CLOCK() - t0) / updates)
    return statistics.median(times)


def bench_population(name: str, shape_name: str, device: str, threads: int, updates: int, repeats: int,
                     overrides: dict, K: int):
    """Per-run seconds per update of K sequential runs and of one K-member vectorized population.

    Blocks alternate (sequential, vectorized, sequential, ...) so both see the same machine load; each block runs
    ``updates`` updates of every run. Returns ``(sequential, vectorized)`` medians, or None if unsupported.
    """
    from marlkit.population import Population, supports_population

    cls = get_algo(name)
    data, spec = synthetic(SHAPES[shape_name])
    if not supports_population(cls) or (spec.discrete and not cls.supports_discrete) or \
            (not spec.discrete and not cls.supports_continuous):
        return None
    torch.set_num_threads(threads)
    cfg = cls.Config.from_dict(overrides)

    def build():
        algos, samplers = [], []
        for k in range(K):
            torch.manual_seed(k)
            algos.append(cls(spec, cfg, device=device))
            samplers.append(DeviceSampler(data, device, seed=k))
            algos[-1].setup(samplers[-1])
        return algos, samplers

    seq, seq_s = build()
    members, pop_s = build()
    pop = Population(members)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def run_seq(n):
        for a, s in zip(seq, seq_s):
            for _ in range(n):
                a.train_step(s)

    def run_pop(n):
        for _ in range(n):
            pop.train_step(pop_s)

    warm = max(updates // 10, 2)
    run_seq(warm)
    run_pop(warm)
    sync()
    ts, tp = [], []
    for _ in range(repeats):
        for fn, out in ((run_seq, ts), (run_pop, tp)):
            t0 = CLOCK()
            fn(updates)
            sync()
            out.append((CLOCK() - t0) / (updates * K))
    return statistics.median(ts), statistics.median(tp)


def bench_algo(name: str, shape_name: str, device: str, threads: int, updates: int, repeats: int, overrides: dict,
               compiled: str | None = None):
    """Median seconds per ``train_step`` of one algorithm (None if it does not support the shape's actions);
    ``compiled``: a torch.compile backend to run the stages through (``"inductor"``: CUDA graphs on CUDA)."""
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
    if compiled:
        algo.enable_compile(compiled)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return time_updates(lambda: algo.train_step(sampler), updates, repeats, sync)


def count_flops(algo, sampler) -> float:
    """Floating-point operations of one update (matrix products, forward and backward; elementwise ops are not
    counted), measured with ``torch.utils.flop_counter`` on a copy of ``algo``. The oneDNN linear path is switched
    off for the count so that every product is an operator the counter knows (same arithmetic)."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    from marlkit.nets.mlp import onednn_linear

    probe, probe_sampler = copy.deepcopy(algo), copy.deepcopy(sampler)
    old = onednn_linear(False)
    try:
        with FlopCounterMode(display=False) as counter:
            probe.train_step(probe_sampler)
    finally:
        onednn_linear(old)
    return float(counter.get_total_flops())


def gemm_rates(threads: int, repeats: int = 30) -> dict[str, float]:
    """GFLOP/s of the products a paper-size update is made of, on this machine now (fastest of the sizes tried):
    ``shared``: one 256-wide layer on ``[rows, 256]`` (:func:`marlkit.nets.mlp.linear`, oneDNN on CPU), and
    ``batched``: a ``baddbmm`` over 12 separate 256-wide layers (6 agents × twin critics), the op of separate
    per-agent parameters."""
    from marlkit.nets.mlp import linear

    torch.set_num_threads(threads)
    out = {}
    w, b = torch.randn(256, 256), torch.randn(256)
    W, Bb = torch.randn(12, 256, 256), torch.randn(12, 1, 256)
    for kind in ("shared", "batched"):
        best = 0.0
        for rows in (768, 3840):
            if kind == "shared":
                x = torch.randn(rows, 256)
                fn, flops = (lambda: linear(x, w, b)), 2 * rows * 256 * 256
            else:
                x = torch.randn(12, rows // 6, 256)
                fn, flops = (lambda: torch.baddbmm(Bb, x, W)), 2 * 12 * (rows // 6) * 256 * 256
            for _ in range(5):
                fn()
            t0 = time.perf_counter()
            for _ in range(repeats):
                fn()
            best = max(best, flops * repeats / (time.perf_counter() - t0) / 1e9)
        out[kind] = best
    return out


def bench_vs_omiga(names: list[str], shape_name: str, threads: int, block: int, blocks: int,
                   overrides: dict) -> list[dict]:
    """Every algorithm's update against OMIGA's, side by side: alternating blocks of ``block`` updates of OMIGA and
    of the algorithm (``blocks`` pairs, order swapped every pair), process CPU time. Per algorithm: median ms per
    update, the median and range of the per-pair ratios to OMIGA, FLOPs per update and achieved GFLOP/s."""
    torch.set_num_threads(threads)
    data, spec = synthetic(SHAPES[shape_name])

    def build(name):
        cls = get_algo(name)
        if spec.discrete and not cls.supports_discrete or not spec.discrete and not cls.supports_continuous:
            return None
        torch.manual_seed(0)
        algo = cls(spec, cls.Config.from_dict(overrides), device="cpu")
        sampler = DeviceSampler(data, "cpu", seed=0)
        algo.setup(sampler)
        return algo, sampler

    def timed(algo, sampler):
        t0 = time.process_time()
        for _ in range(block):
            algo.train_step(sampler)
        return (time.process_time() - t0) / block

    omiga = build("omiga")
    omiga_flops = count_flops(*omiga)
    rows = []
    for name in names:
        built = build(name)
        if built is None:
            continue
        for _ in range(max(block // 5, 2)):  # warm-up of both
            built[0].train_step(built[1])
            omiga[0].train_step(omiga[1])
        ours, theirs = [], []
        for k in range(blocks):
            pair = [(built, ours), (omiga, theirs)]
            for (algo, sampler), out in (pair if k % 2 == 0 else pair[::-1]):
                out.append(timed(algo, sampler))
        ratios = sorted(a / o for a, o in zip(ours, theirs))
        flops = count_flops(*built)
        ms = statistics.median(ours) * 1e3
        rows.append(dict(algo=name, shape=shape_name, ms=ms, omiga_ms=statistics.median(theirs) * 1e3,
                         ratio=statistics.median(ratios), ratio_min=ratios[0], ratio_max=ratios[-1], flops=flops,
                         flops_ratio=flops / omiga_flops, gflops_per_s=flops / (ms * 1e-3) / 1e9))
        print(f"{shape_name:>16} {name:>10}: {ms:8.2f} ms/update, {rows[-1]['ratio']:.2f}x OMIGA "
              f"({ratios[0]:.2f}-{ratios[-1]:.2f}), {flops / 1e9:.2f} GFLOP ({rows[-1]['flops_ratio']:.1f}x OMIGA's), "
              f"{rows[-1]['gflops_per_s']:.0f} GFLOP/s", flush=True)
    return rows


def vs_omiga_markdown(rows: list[dict], rates: dict[str, float], block: int, blocks: int,
                      target: float = 3.0, floor_slack: float = 1.5) -> list[str]:
    """The side-by-side table against OMIGA with each algorithm's arithmetic floor, as markdown lines."""
    lines = [f"## Every algorithm against OMIGA (side by side, {rows[0]['shape'] if rows else ''}, CPU, 1 thread)", "",
             f"Alternating blocks of {block} updates of OMIGA and of the algorithm ({blocks} pairs, process CPU time); "
             "'× OMIGA': median (range) of the per-pair ratios. FLOPs: matrix products of one update, forward and "
             "backward (`torch.utils.flop_counter`). GEMM rates measured in this run: one shared 256-wide layer "
             f"{rates['shared']:.0f} GFLOP/s, a `baddbmm` over 12 separate 256-wide layers (the product of separate "
             f"per-agent parameters) {rates['batched']:.0f} GFLOP/s. Floor: FLOPs at the batched rate, the fastest "
             f"an update with separate per-agent parameters can run. Target: ≤ {target:g}× OMIGA, or, where the "
             f"arithmetic alone exceeds {target:g}× OMIGA's, within {floor_slack:g}× of the floor.", "",
             "| algorithm | ms/update | × OMIGA | GFLOP/update | × OMIGA's FLOPs | GFLOP/s | floor | × floor | "
             "target |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        floor_ms = r["flops"] / (rates["batched"] * 1e9) * 1e3
        if r["ratio"] <= target:
            verdict = f"≤ {target:g}× OMIGA: met"
        elif r["flops_ratio"] > target:
            verdict = f"floor: {'met' if r['ms'] / floor_ms <= floor_slack else 'missed'}"
        else:
            verdict = "missed"
        lines.append(f"| {r['algo']} | {r['ms']:.1f} | {r['ratio']:.2f} ({r['ratio_min']:.2f}–{r['ratio_max']:.2f}) | "
                     f"{r['flops'] / 1e9:.2f} | {r['flops_ratio']:.1f} | {r['gflops_per_s']:.0f} | {floor_ms:.1f} ms | "
                     f"{r['ms'] / floor_ms:.2f} | {verdict} |")
    return lines + [""]


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
    cpu = cpu_info("model name") or platform.processor() or platform.machine()
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
    p.add_argument("--shapes", default=",".join(TABLE_SHAPES))
    p.add_argument("--threads", default="1,2", help="CPU thread counts to time")
    p.add_argument("--updates", type=int, default=200, help="updates per timed block")
    p.add_argument("--repeats", type=int, default=3, help="timed blocks (median reported)")
    p.add_argument("--population", type=int, default=8, help="K of the population column (0: skip it)")
    p.add_argument("--cpu-time", action="store_true", help="time with process CPU time (busy machines)")
    p.add_argument("--vs-official-md", default=None,
                   help="markdown written by benchmarks/vs_official.py --markdown-out, added to the markdown")
    p.add_argument("--data-json", default=None,
                   help="data-build figures written by benchmarks/data_build.py --json, added to the markdown")
    p.add_argument("--vs-omiga", default="halfcheetah-6x1",
                   help="shape of the side-by-side table of every algorithm against OMIGA with FLOP floors "
                        "('none': skip it)")
    p.add_argument("--vs-omiga-block", type=int, default=10, help="updates per block of that table")
    p.add_argument("--vs-omiga-blocks", type=int, default=4, help="block pairs of that table")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="devices of the main table: cpu (at every --threads), cuda, or auto (cpu, plus cuda if present)")
    p.add_argument("--compile", default="",
                   help="comma-separated algorithms also timed through torch.compile ('all' for every one)")
    p.add_argument("--compile-backend", default="inductor",
                   help="torch.compile backend of --compile (inductor: CUDA graphs on CUDA; eager: tracing only)")
    p.add_argument("--smoke", action="store_true", help="tiny networks and a few updates (CI smoke test)")
    p.add_argument("--json", default=None, help="write raw results here")
    p.add_argument("--markdown", default=None, help="write the results table here (e.g. benchmarks/RESULTS.md)")
    p.add_argument("--section", default=None,
                   help="with --markdown: replace (or append) only the section between '<!-- section:NAME -->' "
                        "markers of that file, keeping the rest")
    args = p.parse_args(argv)
    tune_allocator()  # as the training loop does on CPU

    overrides = {"hidden": (256, 256), "batch_size": 128}
    if args.smoke:
        overrides = {"hidden": (16, 16), "batch_size": 16}
        args.updates, args.repeats = 3, 1
        args.population = min(args.population, 2)
        args.vs_omiga_block, args.vs_omiga_blocks = 2, 1
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    devices = [("cpu", int(t)) for t in args.threads.split(",")] if args.device in ("auto", "cpu") else []
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SystemExit("update_speed.py: error: --device cuda but torch sees no CUDA device")
        devices.append(("cuda", 1))
    rows = []
    for shape in args.shapes.split(","):
        for device, threads in devices:
            for name in args.algos.split(","):
                compile_these = set(ALGOS) if args.compile == "all" else set(filter(None, args.compile.split(",")))
                for compiled in (False, True) if name in compile_these else (False,):
                    sec = bench_algo(name, shape, device, threads, args.updates, args.repeats, overrides,
                                     args.compile_backend if compiled else None)
                    if sec is not None:
                        label = f"{name} (compiled)" if compiled else name
                        rows.append(dict(algo=label, shape=shape, device=device, threads=threads, ms=sec * 1e3))
                        print(f"{shape:>16} {device}:{threads} {label:>10}: {sec * 1e3:8.2f} ms/update", flush=True)
            if "omiga" in ALGOS and "omiga" in args.algos.split(","):
                sec = bench_loop_omiga(shape, device, threads, args.updates, args.repeats, overrides)
                rows.append(dict(algo="omiga (per-agent loop)", shape=shape, device=device, threads=threads,
                                 ms=sec * 1e3))
                print(f"{shape:>16} {device}:{threads} {'omiga-loop':>10}: {sec * 1e3:8.2f} ms/update", flush=True)
            for name in args.algos.split(",") if args.population > 0 else []:
                res = bench_population(name, shape, device, threads, max(args.updates // args.population, 1),
                                       args.repeats, overrides, args.population)
                if res is None:
                    continue
                K = args.population
                for label, sec in ((f"{name} ({K} runs, sequential)", res[0]), (f"{name} ({K} runs, vectorized)",
                                                                                   res[1])):
                    rows.append(dict(algo=label, shape=shape, device=device, threads=threads, ms=sec * 1e3))
                print(f"{shape:>16} {device}:{threads} {name:>10} x{K}: sequential {res[0] * 1e3:8.2f}, vectorized "
                      f"{res[1] * 1e3:8.2f} ms/update per run ({res[0] / res[1]:.2f}x)", flush=True)
    vs_rows, rates = [], {}
    if args.vs_omiga != "none":
        rates = gemm_rates(1)
        print(f"GEMM rates (1 thread): shared layer {rates['shared']:.0f} GFLOP/s, batched {rates['batched']:.0f} "
              "GFLOP/s", flush=True)
        vs_rows = bench_vs_omiga(args.algos.split(","), args.vs_omiga, 1, args.vs_omiga_block, args.vs_omiga_blocks,
                                 overrides)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "vs_omiga": vs_rows, "gemm_rates": rates}, indent=2))
    if args.markdown:
        write_markdown(rows, args, Path(args.markdown),
                       vs_omiga_markdown(vs_rows, rates, args.vs_omiga_block, args.vs_omiga_blocks) if vs_rows else [])
    return 0


def write_markdown(rows, args, path: Path, vs_lines=()) -> None:
    import pandas as pd

    lines = ["# Update speed", "",
             f"Machine: {machine()}. torch {torch.__version__}, marlkit {__version__} (commit {git_commit()}), "
             f"Python {platform.python_version()}.", "",
             "Command: `python benchmarks/update_speed.py " + " ".join(sys.argv[1:]) + "`", "",
             f"Synthetic data, batch {128 if not args.smoke else 16}, hidden (256, 256), separate per-agent "
             f"parameters, median of {args.repeats} blocks of {args.updates} updates"
             f"{' (process CPU time)' if args.cpu_time else ''}."
             + (f" Rows 'K runs, sequential/vectorized': time per update of one run when K={args.population} runs "
                f"(seeds) train one after another or as one vectorized population (alternating blocks of "
                f"{max(args.updates // max(args.population, 1), 1)} updates per run)." if args.population else ""),
             ""]
    lines += list(vs_lines)
    if args.vs_official_md:
        lines += [Path(args.vs_official_md).read_text().rstrip("\n"), ""]
    if rows:
        df = pd.DataFrame(rows)
        df["updates/s"] = 1e3 / df["ms"]
        df["cell"] = df.apply(lambda r: f"{r['ms']:.2f} ms ({r['updates/s']:.0f}/s)", axis=1)
        df["column"] = df["device"] + ":" + df["threads"].astype(str) + " thr"
        for shape, sub in df.groupby("shape", sort=False):
            table = sub.pivot(index="algo", columns="column", values="cell")
            lines += [f"## {shape}", "", table.to_markdown(), ""]
    if args.data_json:
        from data_build import markdown_section

        lines += markdown_section(json.loads(Path(args.data_json).read_text()))
    text = "\n".join(lines) + "\n"
    if args.section:  # one section of a larger document: headings one level down
        text = "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines()) + "\n"
        text = text.replace("## Update speed", f"## Update speed: {args.section}", 1)
        text = replace_section(path.read_text() if path.exists() else "", args.section, text)
    path.write_text(text)


def replace_section(document: str, name: str, body: str) -> str:
    """``document`` with the text between ``<!-- section:name -->`` and ``<!-- /section:name -->`` replaced by
    ``body`` (the marked section appended when there is none)."""
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{start}\n{body}{end}\n"
    if start in document and end in document:
        head, rest = document.split(start, 1)
        return head + block + rest.split(end, 1)[1].lstrip("\n")
    return document + ("\n" if document and not document.endswith("\n") else "") + block


if __name__ == "__main__":
    sys.exit(main())
