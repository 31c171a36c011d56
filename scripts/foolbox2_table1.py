"""Run Foolbox 2.4's own attacks, with their default parameters, on the shipped smooth-kernel models.

The smooth-kernels paper (Table 1) reports the share of samples on which Foolbox's default
attacks failed with no bound on eps; advbench's re-implementations of those searches fail on
almost none of our models. This script asks the paper's own tool the same question on the same
checkpoints and test images, so the difference can be attributed to the models or to the tool.
Foolbox 2.4 does not coexist with Foolbox 3 (advbench's dependency) and needs Python < 3.10's
`collections` aliases, so it runs in its own environment:

    python3 -m venv /tmp/fb2 && /tmp/fb2/bin/pip install torch==2.13.0 foolbox==2.4.0 safetensors pyyaml pillow scipy
    PYTHONPATH=. /tmp/fb2/bin/python scripts/foolbox2_table1.py --n 200 --out docs/runs/foolbox2-table1.json

Writes, per model and attack, the share of failures (a clean error is no failure: the prediction is
already wrong, as in the paper's "prediction accuracy over adversarial examples") and the median
distance found (L2 or Linf, over the samples the attack broke).
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import json
import time
from pathlib import Path

# Foolbox 2.4 imports these names from `collections`, which Python 3.10 removed.
for _name in ("Iterable", "Sequence", "Mapping", "Callable"):
    setattr(collections, _name, getattr(collections.abc, _name))

import foolbox  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import advbench.models.zoo  # noqa: E402,F401  (fills the registry)
from advbench.data import load_dataset, select_indices  # noqa: E402
from advbench.data.registry import dataset_labels  # noqa: E402
from advbench.models.card import load_model  # noqa: E402

MODELS = ("smooth-v", "smooth-vr", "smooth-t", "smooth-tr", "smooth-a", "smooth-ar", "smooth-l", "smooth-lr")
ATTACKS = {
    # column: (Foolbox 2 attack class, its distance)
    "FGSM": (foolbox.attacks.FGSM, foolbox.distances.Linfinity),
    "PGD": (foolbox.attacks.ProjectedGradientDescentAttack, foolbox.distances.Linfinity),
    "DF L2": (foolbox.attacks.DeepFoolL2Attack, foolbox.distances.MeanSquaredDistance),
    "DF Linf": (foolbox.attacks.DeepFoolLinfinityAttack, foolbox.distances.Linfinity),
    "C&W": (foolbox.attacks.CarliniWagnerL2Attack, foolbox.distances.MeanSquaredDistance),
    "S&P": (foolbox.attacks.SaltAndPepperNoiseAttack, foolbox.distances.MeanSquaredDistance),
}


class Float32(torch.nn.Module):
    """Foolbox 2's FGSM hands the model float64 arrays; the model is float32."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.float())


def run(model_name: str, attack_name: str, x: np.ndarray, y: np.ndarray) -> dict[str, object]:
    model, _ = load_model(model_name, "fashion-mnist")
    fmodel = foolbox.models.PyTorchModel(Float32(model).eval(), bounds=(0, 1), num_classes=10)
    cls, distance = ATTACKS[attack_name]
    attack = cls(fmodel, distance=distance)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    np.random.seed(0)
    adversarials = attack(x, y, unpack=False)  # defaults throughout, as in the paper
    seconds = time.perf_counter() - t0
    clean_correct = model.predict(torch.from_numpy(x)).numpy() == y
    found, norms = [], []
    for a, correct in zip(adversarials, clean_correct):
        if not correct:
            found.append(True)
            continue
        ok = a.perturbed is not None
        found.append(ok)
        if ok:
            delta = (a.perturbed - a.unperturbed).ravel()
            norms.append(float(np.abs(delta).max() if distance is foolbox.distances.Linfinity else np.linalg.norm(delta)))
    failures = 1.0 - float(np.mean(found))
    return {"failure_share": round(failures, 4), "median_norm": round(float(np.median(norms)), 4) if norms else None, "n": len(y), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--attacks", nargs="*", default=list(ATTACKS))
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    # The same test images as docs/suites/fmnist-smooth-table1.yaml (n, seed 0).
    idx = select_indices(dataset_labels("fashion-mnist"), args.n, seed=0)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    x, y = data.images.numpy().astype(np.float32), data.labels.numpy().astype(np.int64)
    # Results already in --out are kept (a later call adds models or attacks).
    results: dict[str, dict[str, object]] = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    results["foolbox"] = {"version": foolbox.__version__}
    for model in args.models:
        results.setdefault(model, {})
        for attack in args.attacks:
            results[model][attack] = run(model, attack, x, y)
            print(model, attack, results[model][attack], flush=True)
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
