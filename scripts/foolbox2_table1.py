"""Run Foolbox 2.4's own attacks, with their default parameters, on the shipped smooth-kernel models.

The smooth-kernels paper (Table 1) reports the share of samples on which Foolbox's default
attacks failed with no bound on eps; advbench's re-implementations of those searches fail on
almost none of our models. This script asks the paper's own tool the same question on the same
checkpoints and test images, so the difference can be attributed to the models or to the tool.
Foolbox 2.4 does not coexist with Foolbox 3 (advbench's dependency) and needs Python < 3.10's
`collections` aliases, so it runs in its own environment:

    python3 -m venv /tmp/fb2 && /tmp/fb2/bin/pip install torch==2.13.0 foolbox==2.4.0 safetensors pyyaml pillow scipy
    PYTHONPATH=. /tmp/fb2/bin/python scripts/foolbox2_table1.py --n 100 --db results/reproductions.sqlite

Each model x attack becomes a stored run like advbench's own (attack `foolbox2:<class>`, the
checkpoint's sha256, the test indices' hash, the git commit, Foolbox's version), one row per
sample: a success is re-checked by a clean forward pass of the model, and its distance (L2 or
Linf) is stored as the smallest adversarial found. A clean error is no failure: the prediction is
already wrong, as in the paper's "prediction accuracy over adversarial examples".
scripts/reproductions.py builds the table from these runs.
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import time

# Foolbox 2.4 imports these names from `collections`, which Python 3.10 removed.
for _name in ("Iterable", "Sequence", "Mapping", "Callable"):
    setattr(collections, _name, getattr(collections.abc, _name))

import foolbox  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import advbench.models.table  # noqa: E402,F401  (fills the registry)
from advbench.data import load_dataset, select_indices  # noqa: E402
from advbench.data.registry import dataset_labels  # noqa: E402
from advbench.data.subset import indices_hash  # noqa: E402
from advbench.engine.runs import RunLedger, config_key, run_meta  # noqa: E402
from advbench.models.card import load_model  # noqa: E402
from advbench.store import Store, summarize  # noqa: E402

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


def run(store: Store, model_name: str, column: str, idx: torch.Tensor, x: np.ndarray, y: np.ndarray) -> str:
    """Attack every sample with Foolbox 2's defaults and store the result as a run; returns its id."""
    model, card = load_model(model_name, "fashion-mnist")
    fmodel = foolbox.models.PyTorchModel(Float32(model).eval(), bounds=(0, 1), num_classes=10)
    cls, distance = ATTACKS[column]
    linf = distance is foolbox.distances.Linfinity
    norm, eps = ("linf", 1.0) if linf else ("l2", float(x[0].size) ** 0.5)  # no bound: the [0,1] box's diameter
    label = f"foolbox2:{cls.__name__}"
    payload = {
        "model": model_name, "checkpoint_sha256": card.sha256, "dataset": "fashion-mnist", "split": "test",
        "indices_hash": indices_hash(idx), "norm": norm, "eps": [eps], "seed": 0, "checks": "off",
        "attacks": [{"name": label, "config": {"library": "foolbox", "version": foolbox.__version__, "distance": distance.__name__, "parameters": "defaults"}}],
    }
    config = {**payload, "attack_names": [label], "probe_names": [], "adaptations": {}, "eval_config": {},
              "architecture": type(model.net).__name__, "escalation": None, "verdict": None, "check_results": [], "check_numbers": None, "rechecks": []}
    ledger = RunLedger.open(store, config_key(payload), "eval", True, "cpu", run_meta(model_name, "fashion-mnist", len(y), 0, indices_hash(idx), card.sha256, "cpu"), config)
    attack = cls(fmodel, distance=distance)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    np.random.seed(0)
    adversarials = attack(x, y, unpack=False)  # defaults throughout, as in the paper
    seconds = time.perf_counter() - t0
    clean_pred = model.predict(torch.from_numpy(x)).numpy()
    found = [a.perturbed is not None for a in adversarials]
    perturbed = np.stack([a.perturbed if ok else a.unperturbed for a, ok in zip(adversarials, found)]).astype(np.float32)
    adv_pred = model.predict(torch.from_numpy(perturbed)).numpy()  # every success re-checked by the model itself
    rows = []
    for i, (sample, ok) in enumerate(zip(idx.tolist(), found)):
        common = {"sample_idx": sample, "attack": label, "eps": eps, "label": int(y[i]), "clean_pred": int(clean_pred[i]), "seconds": seconds / len(y)}
        if clean_pred[i] != y[i]:
            rows.append({**common, "status": "misclassified"})
            continue
        success = bool(ok and adv_pred[i] != y[i])
        delta = (perturbed[i] - x[i]).ravel()
        dist = float(np.abs(delta).max() if linf else np.linalg.norm(delta)) if success else None
        rows.append({**common, "status": "attacked", "adv_pred": int(adv_pred[i]), "success": int(success), "distance": dist, "min_distance": dist})
    ledger.commit_batch([(sample, int(y[i]), int(clean_pred[i])) for i, sample in enumerate(idx.tolist())], rows)
    summary = summarize(store, ledger.run_id)
    ledger.finish(summary.to_dict(), [])
    return ledger.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--attacks", nargs="*", default=list(ATTACKS))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--db", required=True, help="result database the runs are stored in")
    args = parser.parse_args()
    # The same test images as docs/suites/fmnist-smooth-table1.yaml (n, seed 0).
    idx = select_indices(dataset_labels("fashion-mnist"), args.n, seed=0)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    x, y = data.images.numpy().astype(np.float32), data.labels.numpy().astype(np.int64)
    with Store(args.db) as store:
        for model in args.models:
            for column in args.attacks:
                run_id = run(store, model, column, idx, x, y)
                summary = summarize(store, run_id)
                print(model, column, run_id, f"failures {100 * summary.per_eps[0].worst_case:.1f} %", flush=True)


if __name__ == "__main__":
    main()
