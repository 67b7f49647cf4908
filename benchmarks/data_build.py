"""Build time of a multi-agent MuJoCo dataset and the peak memory of loading it for training.

Build: ``marlkit data build ENV --quality Q --transitions T`` in a fresh subprocess (cache in a temporary
directory, so it really rolls out): wall-clock time, CPU time and peak resident memory.

Load: a second fresh subprocess reads the file (:func:`marlkit.data.hdf5.load_hdf5`) and makes the training
sampler (:class:`marlkit.data.sampler.DeviceSampler` on ``--device``): the increase of its peak resident memory
over the resident memory before loading, against the bytes of the dataset's arrays. The HDF5 fields are read
once into NumPy arrays and the CPU sampler wraps them with ``torch.from_numpy`` (no copy), so the increase should
stay close to one copy of the data (about 1×), not two.

    python benchmarks/data_build.py --transitions 1000000 --json benchmarks/results/data_build.json
    python benchmarks/data_build.py --transitions 20000              # quick check
    python benchmarks/update_speed.py --data-json benchmarks/results/data_build.json --markdown ...  # in RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_TARGET_S = 15 * 60
"""Target: 1M transitions within 15 minutes on the benchmark CPU."""

_LOAD_CHILD = r"""
import json, sys
import numpy as np
import torch

from marlkit.data.hdf5 import load_hdf5
from marlkit.data.sampler import DeviceSampler


def rss_kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


path, device = sys.argv[1], sys.argv[2]
before = rss_kb("VmRSS")
ds = load_hdf5(path)
sampler = DeviceSampler(ds, device)
peak = rss_kb("VmHWM")
after = rss_kb("VmRSS")
fields = ds.fields()
shared = {k: bool(np.shares_memory(t.numpy(), fields[k])) for k, t in sampler.tensors.items()
          if k in fields and t.device.type == "cpu"}
print(json.dumps({"dataset_bytes": int(sum(v.nbytes for v in fields.values())), "rss_before_kb": before,
                  "rss_peak_kb": peak, "rss_after_kb": after, "transitions": ds.size, "shares_memory": shared}))
"""


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def measure_build(env_name: str, quality: str, transitions: int, seed: int, data_dir: Path) -> dict:
    """Run ``marlkit data build`` in a subprocess; wall/CPU seconds, peak RSS (MB) and the file written."""
    env = _env()
    env["MARLKIT_DATA"] = str(data_dir)
    cmd = [sys.executable, "-W", "ignore", "-m", "marlkit.cli", "data", "build", env_name, "--quality", quality,
           "--transitions", str(transitions), "--seed", str(seed)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"data build failed ({proc.returncode}): {proc.stderr[-2000:]}")
    files = sorted(Path(data_dir).rglob("*.h5"))
    if not files:
        raise RuntimeError(f"data build wrote no file under {data_dir}")
    return {"env": env_name, "quality": quality, "transitions": transitions, "seed": seed, "wall_s": wall,
            "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "peak_rss_mb": after.ru_maxrss / 1024, "file": str(files[-1]),
            "file_mb": files[-1].stat().st_size / 2**20}


def measure_load(path: str | Path, device: str = "cpu") -> dict:
    """Load ``path`` into a training sampler in a fresh subprocess; memory figures (MB) and per-field sharing."""
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", _LOAD_CHILD, str(path), device], env=_env(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"loading failed ({proc.returncode}): {proc.stderr[-2000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    data_mb = r["dataset_bytes"] / 2**20
    increase = (r["rss_peak_kb"] - r["rss_before_kb"]) / 1024
    return {"device": device, "transitions": r["transitions"], "dataset_mb": data_mb, "peak_increase_mb": increase,
            "ratio": increase / data_mb if data_mb else float("nan"), "shares_memory": r["shares_memory"]}


def markdown_section(result: dict) -> list[str]:
    """The data-build and loading figures as markdown lines (used by ``update_speed.py --data-json``)."""
    b, ld = result["build"], result["load"]
    minutes = b["wall_s"] / 60
    lines = ["## Data: building and loading a multi-agent MuJoCo dataset", "",
             f"Command: `python benchmarks/data_build.py {result.get('argv', '')}`", "",
             "| step | dataset | transitions | wall time | CPU time | peak memory |", "|---|---|---|---|---|---|",
             f"| build (`marlkit data build`) | {b['env']} {b['quality']} | {b['transitions']:,} | "
             f"{b['wall_s']:.0f} s ({minutes:.1f} min; target ≤ {BUILD_TARGET_S // 60} min for 1M"
             f"{' transitions, scaled linearly' if b['transitions'] != 1_000_000 else ''}: "
             f"{'met' if b['wall_s'] * 1e6 / b['transitions'] <= BUILD_TARGET_S else 'missed'}) | "
             f"{b['cpu_s']:.0f} s | {b['peak_rss_mb']:.0f} MB RSS |",
             f"| load (`load_hdf5` + `DeviceSampler` on {ld['device']}) | {b['file_mb']:.0f} MB file | "
             f"{ld['transitions']:,} | | | +{ld['peak_increase_mb']:.0f} MB peak RSS for {ld['dataset_mb']:.0f} MB "
             f"of arrays ({ld['ratio']:.2f}×) |", ""]
    shared = ld["shares_memory"]
    if shared:
        lines += [f"Sampler tensors sharing memory with the arrays read: {sum(shared.values())} of {len(shared)} "
                  f"fields ({', '.join(k for k, v in shared.items() if not v) or 'all'}"
                  f"{' converted' if not all(shared.values()) else ''}).", ""]
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="mamujoco:HalfCheetah-6x1")
    p.add_argument("--quality", default="medium")
    p.add_argument("--transitions", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="device of the training sampler in the load measurement")
    p.add_argument("--json", default=None, help="write the figures here (for update_speed.py --data-json)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="marlkit-data-build-") as tmp:
        build = measure_build(args.env, args.quality, args.transitions, args.seed, Path(tmp))
        load = measure_load(build["file"], args.device)
    build["file"] = Path(build["file"]).name
    result = {"build": build, "load": load, "argv": " ".join(sys.argv[1:] if argv is None else argv)}
    print(f"build {build['env']} {build['quality']} {build['transitions']:,} transitions: {build['wall_s']:.1f} s wall "
          f"({build['cpu_s']:.1f} s CPU, peak RSS {build['peak_rss_mb']:.0f} MB, file {build['file_mb']:.0f} MB)")
    print(f"load on {load['device']}: peak RSS +{load['peak_increase_mb']:.0f} MB for {load['dataset_mb']:.0f} MB of "
          f"arrays ({load['ratio']:.2f}x); sampler shares memory: {load['shares_memory']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
