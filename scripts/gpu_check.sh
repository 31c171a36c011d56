#!/usr/bin/env bash
# The GPU checks (issue 39), for a machine with CUDA; about 5 minutes on one GPU.
#   1. the `gpu`-marked tests (tests/test_gpu.py): end-to-end evaluations and certifications on
#      CUDA against the CPU, within the tolerances of docs/gpu.md;
#   2. one `advbench eval` and one `advbench certify` from the command line on CUDA and on the CPU
#      (rn18-nt, width 4, trained here on scikit-learn's digits: no download), compared within
#      the same tolerances, plus a certify at another --batch-size on CUDA.
# Arg 1: the bin directory holding python and advbench (default: the repository's .venv/bin).
# Prints one line per comparison; exit 0 when all pass, 1 when one fails, 2 without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-$PWD/.venv/bin}
PY=$BIN/python
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: no CUDA GPU here (torch.cuda.is_available() is False)" >&2
  exit 2
fi
"$PY" -c 'import torch; print("gpu_check:", torch.cuda.get_device_name(0), "torch", torch.__version__)'
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
status=0

echo "+ pytest -m gpu tests/test_gpu.py" >&2
"$PY" -m pytest -q -p no:xdist -m gpu -s tests/test_gpu.py || status=1

echo "+ training rn18-nt (width 4) on digits into $WORK/zoo" >&2
"$PY" - "$WORK/zoo" <<'EOF' || exit 1
import sys
from pathlib import Path

import torch

from advbench.train import TrainConfig, train_model

torch.set_num_threads(1)  # the tests' fixture: the same weights on any CPU thread count
config = TrainConfig("rn18-nt", dataset="digits", epochs=6, batch_size=64, lr=0.05, crop_pad=0, flip=False, model_kwargs={"width": 4})
train_model(config, Path(sys.argv[1]) / "digits", torch.device("cpu"))
EOF

common=(--model rn18-nt --dataset digits --zoo "$WORK/zoo" --json)
for device in cpu cuda; do
  echo "+ advbench eval/certify --device $device" >&2
  "$BIN/advbench" eval "${common[@]}" --n 128 --attack fgsm --attack pgd --eps 0.05 --eps 0.1 --no-checks \
    --device "$device" --db "$WORK/runs.sqlite" > "$WORK/eval-$device.json" || status=1
  "$BIN/advbench" certify "${common[@]}" --n 32 --sigma 0.25 --noise-draws 4000 --alpha 0.01 \
    --device "$device" --db "$WORK/runs.sqlite" > "$WORK/certify-$device.json" || status=1
done
"$BIN/advbench" certify "${common[@]}" --n 32 --sigma 0.25 --noise-draws 4000 --alpha 0.01 --batch-size 100 \
  --device cuda --db "$WORK/batch100.sqlite" > "$WORK/certify-cuda-100.json" || status=1

"$PY" - "$WORK" <<'EOF' || status=1
import json
import sys
from pathlib import Path

work = Path(sys.argv[1])
load = lambda name: json.loads((work / name).read_text())  # noqa: E731
failed = False


def report(what: str, ok: bool) -> None:
    global failed
    failed |= not ok
    print(f"gpu_check: {'ok  ' if ok else 'FAIL'} {what}")


cpu, gpu = load("eval-cpu.json"), load("eval-cuda.json")
report(f"eval clean accuracy cpu {cpu['clean_accuracy']:.4f} cuda {gpu['clean_accuracy']:.4f} (within 1/128)",
       abs(cpu["clean_accuracy"] - gpu["clean_accuracy"]) <= 1 / 128 + 1e-9)
for a, b in zip(cpu["per_eps"], gpu["per_eps"]):
    report(f"eval robust accuracy at eps {a['eps']}: cpu {a['worst_case']:.4f} cuda {b['worst_case']:.4f} (within 4/128)",
           abs(a["worst_case"] - b["worst_case"]) <= 4 / 128 + 1e-9)
for name, tolerance in (("certify-cuda.json", 2 / 32), ("certify-cuda-100.json", 1 / 32)):
    base = load("certify-cpu.json" if name == "certify-cuda.json" else "certify-cuda.json")
    other = load(name)
    for sigma, curve in base["curves"].items():
        a, b = curve["certified_accuracy"], other["curves"][sigma]["certified_accuracy"]
        gap = max(abs(x - y) for x, y in zip(a, b))
        report(f"certified accuracy curve, {name} against {'cpu' if name == 'certify-cuda.json' else 'cuda auto batch'}: "
               f"largest gap {gap:.4f} (within {tolerance:.4f})", gap <= tolerance + 1e-9)
print(f"gpu_check: forward passes per second, certify cpu {load('certify-cpu.json')['forward_passes_per_second']:.0f}, "
      f"cuda {load('certify-cuda.json')['forward_passes_per_second']:.0f}")
sys.exit(1 if failed else 0)
EOF
echo "gpu_check: $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
