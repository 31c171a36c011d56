"""Measure the shipped Fashion-MNIST checkpoints and record the numbers in their cards.

For each model: clean and PGD-20 Linf eps=0.1 accuracy on the whole test set, plus PGD-20 at
Linf 0.02, L2 0.5 and L2 1.0 on 1000 images. Every number comes from an `advbench eval` run stored in
the given database; the run ids are written into the cards and printed as a markdown table.
Run: python scripts/zoo_metrics.py [--db results/zoo.sqlite] [MODEL ...]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from advbench.engine import EvalConfig, run_eval
from advbench.models.card import ModelCard, card_path

SETTINGS = [
    # (metric key, norm, eps, n)
    ("pgd20_linf_0.1", "linf", 0.1, None),
    ("pgd20_linf_0.02", "linf", 0.02, 1000),
    ("pgd20_l2_0.5", "l2", 0.5, 1000),
    ("pgd20_l2_1.0", "l2", 1.0, 1000),
]


def measure(model: str, db: str) -> dict[str, object]:
    metrics: dict[str, object] = {}
    for key, norm, eps, n in SETTINGS:
        config = EvalConfig(model=model, attacks=("pgd",), eps=(eps,), norm=norm, n=n, db=db, batch_size=500)
        summary = run_eval(config).summary
        if n is None:
            metrics["clean_accuracy"] = round(summary.clean_accuracy, 4)
            metrics["test_images"] = summary.n
        metrics[key] = {"accuracy": round(summary.per_eps[0].worst_case, 4), "n": summary.n, "run": summary.run_id}
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["rn18-nt", "rn18-nt-noise", "kap-rn18"])
    parser.add_argument("--db", default="results/zoo.sqlite")
    parser.add_argument("--table-only", action="store_true", help="print the table from the cards without evaluating")
    args = parser.parse_args()
    print("| model | clean % | PGD-20 Linf 0.1 % | PGD-20 Linf 0.02 % | PGD-20 L2 0.5 % | PGD-20 L2 1.0 % | train minutes |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models:
        path = card_path(model, "fashion-mnist")
        if path is None:
            raise SystemExit(f"no fashion-mnist card for {model}")
        card = ModelCard.from_yaml(path)
        if args.table_only:
            metrics = card.metrics
        else:
            metrics = measure(model, args.db)
            replace(card, metrics=metrics).to_yaml(path)
        minutes = sum(h["seconds"] for h in card.training.get("history", [])) / 60
        cells = [f"{100 * metrics[k]['accuracy']:.2f}" for k, *_ in SETTINGS]  # type: ignore[index]
        print(f"| {model} | {100 * metrics['clean_accuracy']:.2f} | {' | '.join(cells)} | {minutes:.1f} |")  # type: ignore[operator]


if __name__ == "__main__":
    main()
