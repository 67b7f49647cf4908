#!/usr/bin/env bash
# Every algorithm's updates/s on one accelerator: eager vs compiled (torch.compile; CUDA graphs on CUDA) and K=8
# seeds as one vectorized population vs 8 sequential runs, on the HalfCheetah-6x1 and 5m_vs_6m shapes at paper
# sizes. Writes its table into the 'cuda' section of benchmarks/RESULTS.md (the rest of the file is kept).
#
#   bash benchmarks/gpu.sh                      # on a CUDA machine, a few minutes
#   bash benchmarks/gpu.sh --device cpu --smoke --out /tmp/gpu.md   # the same script at a tiny size on CPU
set -euo pipefail
cd "$(dirname "$0")/.."
device=cuda out=benchmarks/RESULTS.md smoke=() backend=inductor compile=omiga,comadice,inspo,bc,matd3bc
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --smoke) smoke=(--smoke); shift ;;
    --compile) compile=$2; shift 2 ;;
    --compile-backend) backend=$2; shift 2 ;;
    *) echo "gpu.sh: error: unknown option $1 (options: --device cuda|cpu, --out FILE, --smoke, --compile ALGOS, --compile-backend B)" >&2; exit 2 ;;
  esac
done
if [ "$device" = cpu ] && [ "$backend" = inductor ] && [ ${#smoke[@]} -gt 0 ]; then
  backend=eager  # inductor's C++ compilation takes minutes on CPU: the smoke run only traces
fi
exec python benchmarks/update_speed.py --device "$device" --threads 1 --shapes halfcheetah-6x1,5m_vs_6m \
  --updates 200 --repeats 3 --population 8 --compile "$compile" --compile-backend "$backend" \
  --vs-omiga none "${smoke[@]}" --markdown "$out" --section "$device"
