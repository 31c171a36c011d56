"""Which BPDA surrogate the polarizer's attack goes through, and how much that changes its numbers.

The dissertation attacks its ternary quantizer through "differentiable approximations, or
identity if it makes the attack stronger" (§2.2.3) without saying which one Table 4.1 used. Our
shipped pfe-madry uses 0.5 tanh(s (z - c)) + 0.5 tanh(s (z + c)) with steepness s = 10. This
script re-runs Table 4.1's FGSM and BIM-20 (step eps/10) and PGD-20 through the identity
(straight-through) and several steepness values, on the same images, each run stored:

    python scripts/polarizer_surrogates.py --n 1000 --db docs/runs/polarizer-surrogates.sqlite

Only the surrogate changes; the exact model (whose predictions judge success) is the shipped
checkpoint. Each steepness is its own named model object (`pfe-madry-bpda-<s>`), so the runs
keep apart in the store.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import advbench
from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels
from advbench.models.card import load_model
from advbench.models.polarize import PolarizingFrontEnd

ATTACKS = ["fgsm", "bim:steps=20,rel_stepsize=0.1", "pgd:steps=20"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--steepness", default="identity,2,5,10,25,100", help="comma-separated; identity = straight-through")
    parser.add_argument("--db", type=Path, default=Path("results/polarizer-surrogates.sqlite"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    idx = select_indices(dataset_labels("fashion-mnist"), args.n, seed=0)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    rows = []
    print(f"{'surrogate':>10} " + " ".join(f"{a.partition(':')[0]:>7}" for a in ATTACKS), flush=True)
    for text in args.steepness.split(","):
        steepness = None if text.strip() == "identity" else float(text)
        model, _ = load_model("pfe-madry", "fashion-mnist")
        front = next(m for m in model.modules() if isinstance(m, PolarizingFrontEnd))
        front.quantizer.steepness = steepness
        row = {"surrogate": text.strip()}
        for attack in ATTACKS:  # each attack on its own, as the paper reports them
            result = advbench.evaluate(model, data.images, data.labels, "linf:0.1", attack, checks=False,
                                       name=f"pfe-madry-bpda-{text.strip()}", db=args.db)
            row[attack] = {"robust": result.robust_accuracy[0.1], "run_id": result.summary.run_id}
        row["clean"] = result.clean_accuracy
        rows.append(row)
        print(f"{text.strip():>10} " + " ".join(f"{100 * row[a]['robust']:7.1f}" for a in ATTACKS), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"n": args.n, "attacks": ATTACKS, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
