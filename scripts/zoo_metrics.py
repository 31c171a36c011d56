"""Measure the shipped Fashion-MNIST checkpoints and record the numbers in their cards.

For each model: clean and PGD-20 Linf eps=0.1 accuracy on 1000 test images, plus (unless
`--settings 1`) PGD-20 at Linf 0.02, L2 0.5 and L2 1.0 on 500 (the first cards: 10000 and
1000). Models random at inference (every step costs EOT draws x their own noise samples) get
each setting on 100 images with 2 EOT draws per gradient. Every number comes from an
`advbench eval` run stored in the given database; the run ids are written into the cards, with
the card's default threat model and its paper's facts, and a markdown table is printed.
Checkpoints are re-saved in float16 first where that leaves the predictions on 2000 test
images unchanged (the zoo must stay under 100 MB).
With `--default`, each model gets `advbench eval`'s default evaluation instead (`auto` with the
gradient-masking checks, at the card's threat model) and its verdict, kept beside the PGD-20 numbers.
`--write-table docs/zoo.md docs/notes/zoo.md` replaces the zoo's tables in those files with every shipped
card's row: the compact one on the zoo page (clean, default evaluation, verdict, a link to the notes)
and the full one in the lab notes.
Run: python scripts/zoo_metrics.py [--db results/zoo.sqlite] [--new] [--settings 1] [--default] [MODEL ...]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from advbench.engine import EvalSpec, Runtime, run_eval
from advbench.models.card import REPO_ZOO, ModelCard, card_path, load_model
from advbench.models.paper import default_threat, own_variant, paper_facts
from advbench.report.intervals import mean_interval, wilson

SETTINGS = [
    # (metric key, norm, eps, n test images, balanced subset of seed 0)
    ("pgd20_linf_0.1", "linf", 0.1, 1000),
    ("pgd20_linf_0.02", "linf", 0.02, 500),
    ("pgd20_l2_0.5", "l2", 0.5, 500),
    ("pgd20_l2_1.0", "l2", 1.0, 500),
]


def measure_default(model: str, db: str, stochastic: bool, threat: dict, eot: int | None = None, random_n: int = 500, batch_size: int = 500) -> dict[str, object]:
    """`advbench eval`'s default evaluation at the card's threat model: `auto` with the
    gradient-masking checks (which may escalate it) and their verdict; 1000 images, or `random_n`
    for models random at inference (every point judged by a vote; their expected robust accuracy,
    the mean of P(correct) at each image's worst point, and its spread are recorded too; `eot`, when
    given, overrides the evaluation's EOT draws and is recorded beside the number)."""
    eot = eot if stochastic else None  # EOT means nothing to a deterministic model
    spec = EvalSpec(model=model, eps=(threat["eps"],), norm=threat["norm"], n=random_n if stochastic else 1000, eot=eot)
    # Rows do not depend on the batch size; a smaller one commits (and resumes) in smaller steps.
    summary = run_eval(spec, Runtime(db=db, batch_size=batch_size)).summary
    at_eps = summary.per_eps[0]
    metric = {"accuracy": round(at_eps.worst_case, 4), "clean_accuracy": round(summary.clean_accuracy, 4),
              "n": summary.n, "run": summary.run_id, "verdict": summary.verdict, "norm": threat["norm"], "eps": threat["eps"]}
    if at_eps.expected_robust is not None and at_eps.expected_robust_sd is not None:
        metric |= {"expected": round(at_eps.expected_robust, 4), "expected_sd": round(at_eps.expected_robust_sd, 4),
                   "judged_by": "vote"}
    return metric | ({"eot": eot} if eot is not None else {})


def measure(model: str, db: str, stochastic: bool, settings: list[tuple] = SETTINGS) -> dict[str, object]:
    metrics: dict[str, object] = {}
    for key, norm, eps, n in settings:
        # A random model's every step costs EOT draws x its own samples: 100 images, 2 draws on CPU.
        n = 100 if stochastic else n
        spec = EvalSpec(model=model, attacks=("pgd",), eps=(eps,), norm=norm, n=n, checks=False, eot=2 if stochastic else None)
        summary = run_eval(spec, Runtime(db=db, batch_size=500)).summary
        if key == SETTINGS[0][0]:
            metrics["clean_accuracy"] = round(summary.clean_accuracy, 4)
            metrics["test_images"] = summary.n
        metrics[key] = {"accuracy": round(summary.per_eps[0].worst_case, 4), "n": summary.n, "run": summary.run_id}
    return metrics


def store_half(model: str) -> str:
    """Re-save a checkpoint in float16 when its test predictions do not change; returns the dtype kept."""
    import torch

    from advbench.data import load_dataset
    from advbench.models.card import save_checkpoint

    full, card = load_model(model, "fashion-mnist")
    if card.stored_dtype != "float32":
        return card.stored_dtype
    data = load_dataset("fashion-mnist", "test", indices=torch.arange(2000))
    torch.manual_seed(0)
    before = full.predict(data.images)
    path = card_path(model, "fashion-mnist")
    save_checkpoint(full.net, card, path.parent, torch.float16)
    half, _ = load_model(model, "fashion-mnist")
    torch.manual_seed(0)
    agree = (half.predict(data.images) == before).float().mean().item()
    # Deterministic models must agree exactly but for rounding ties; random ones within their own noise.
    if agree < (0.97 if full.stochastic else 0.999):
        save_checkpoint(full.net, card, path.parent, torch.float32)
        return "float32"
    return "float16"


def paper_headline(facts: dict, strides: str) -> str:
    """The paper's clean and main robust number for its own setting, as one cell.

    Entries for another stride configuration of the same defense (stride paper Tables V-VI) or
    another variant of a sweep (dissertation Table B.1's other T) are skipped; of the robust
    numbers, the model's own table entries (no `variant`) come before a sweep's, then PGD before
    other attacks, then more steps. Each number names the table it comes from.
    """
    threat = facts.get("threat_model") or {}
    own = [r for r in own_variant(facts) if r.get("dataset") == facts.get("dataset") and r.get("strides", strides) == strides]
    clean = next((r for r in sorted(own, key=lambda r: "variant" in r) if r.get("metric") == "clean_accuracy"), None)
    robust = [r for r in own if r.get("metric") == "robust_accuracy" and r.get("norm") == threat.get("norm") and r.get("eps") == threat.get("eps") and r.get("eps") is not None]
    if not robust:  # the paper's threat model leaves eps unstated (CPNI): any robust number it gives in its own norm
        robust = [r for r in own if r.get("metric") == "robust_accuracy" and r.get("norm") == threat.get("norm")]
    robust = sorted(robust, key=lambda r: ("variant" in r, r.get("attack") not in ("pgd", "bpda-pgd"), -(r.get("steps") or 0)))
    if clean is None and not robust:
        return "not reported"
    parts = [f"{facts.get('dataset')}: clean {100 * clean['value']:.2f}" if clean else f"{facts.get('dataset')}:"]
    where = [(clean or robust[0]).get("where", "")]
    if robust:
        r = robust[0]
        steps = f"-{r['steps']}" if r.get("steps") else ""
        budget = "eps unstated" if r.get("eps") is None else f"{r['eps']:g}"
        parts.append(f"{(r.get('attack') or '').upper()}{steps} {r['norm']} {budget}: {100 * r['value']:.2f}")
        if r.get("where", "") not in where:  # clean and robust from different tables: name both
            where.append(r.get("where", ""))
    return ", ".join(parts) + f" ({'; '.join(where)})"


TABLE_HEADER = (
    "| model | recipe | clean % | default eval % [95 % CI] (n) | verdict | PGD-20 Linf 0.1 % | PGD-20 Linf 0.02 % | PGD-20 L2 0.5 % | PGD-20 L2 1.0 % | train minutes | paper, own setting |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


COMPACT_HEADER = (
    "| model | recipe | clean % | worst case % [95 % CI] (n) | verdict | notes |\n"
    "|---|---|---|---|---|---|"
)

# The lab notes' section on each group of models (docs/notes/zoo.md, "Against the papers"), first match.
NOTES = (
    ("hah-vgg16", "hah-vgg16"),
    ("madry-cnn-fast-at madry-cnn-trades rn18-at rn18-fast-at rn18-trades rn18-trades-awp rn18-alp rn18-mart rn18-fat rn18-awp",
     "adversarial-training-baselines"),
    ("madry-cnn madry-cnn-at", "dissertation-fashion-mnist-table-41"),
    ("pfe-madry sc-frontend sc-frontend-nodrop", "front-ends"),
    ("smooth-*", "smooth-kernels"),
    ("pni-* cpni-* rn20", "cpni-family"),
    ("rn18-s* rn18-up* preact-* vgg16* alexnet*", "stride-and-upsampling-family"),
    ("cnn* kap-* kmp-* rn18-nt rn18-nt-noise rn18widex4-kap", "kap-family"),
)
GROUP_NAMES = {
    "hah-vgg16": "hah-vgg16",
    "adversarial-training-baselines": "AT baselines",
    "dissertation-fashion-mnist-table-41": "dissertation",
    "front-ends": "front ends",
    "smooth-kernels": "smooth kernels",
    "cpni-family": "CPNI",
    "stride-and-upsampling-family": "stride, upsampling",
    "kap-family": "KAP",
}


def notes_anchor(name: str) -> str:
    """The section of docs/notes/zoo.md about `name`'s group of models."""
    import fnmatch

    for patterns, anchor in NOTES:
        if any(fnmatch.fnmatch(name, p) for p in patterns.split()):
            return anchor
    raise KeyError(f"{name}: no section of docs/notes/zoo.md; add its group to NOTES")


def default_cells(metrics: dict) -> list[str]:
    """The default evaluation's worst case with its Wilson interval and n, and its verdict."""
    default = metrics.get("auto")
    if not default:
        return ["-", "-"]
    low, high = wilson(default["accuracy"], default["n"])
    eot = f", EOT {default['eot']}" if "eot" in default else ""
    voted = ""
    if "expected" in default:  # a random model judged by votes: its expected robust accuracy too
        e_low, e_high = mean_interval(default["expected"], default["expected_sd"], default["n"])
        voted = f", votes; expected {100 * default['expected']:.1f} [{100 * e_low:.1f}, {100 * e_high:.1f}]"
    return [f"{100 * default['accuracy']:.1f} [{100 * low:.1f}, {100 * high:.1f}] (n={default['n']}" + eot + voted + ")", default["verdict"] or "-"]


def compact_row(card: ModelCard) -> str:
    """One row of docs/zoo.md's compact table from a card's recorded metrics."""
    anchor = notes_anchor(card.name)
    cells = [card.name, card.training.get("recipe", ""), f"{100 * card.metrics['clean_accuracy']:.1f}", *default_cells(card.metrics),
             f"[{GROUP_NAMES[anchor]}](notes/zoo.md#{anchor})"]
    return "| " + " | ".join(cells) + " |"


def table_row(card: ModelCard) -> str:
    """One zoo.md row from a card's recorded metrics (nothing is evaluated)."""
    metrics = card.metrics
    history = card.training.get("history", []) + card.training.get("base_training", {}).get("history", [])
    minutes = sum(h["seconds"] for h in history) / 60
    pgd = [
        "-" if k not in metrics else f"{100 * metrics[k]['accuracy']:.2f}" + (f" (n={metrics[k]['n']})" if k == SETTINGS[0][0] else "")
        for k, *_ in SETTINGS
    ]
    strides = "-".join(map(str, card.kwargs.get("strides", [1, 2, 2, 2])))
    cells = [card.name, card.training.get("recipe", ""), f"{100 * metrics['clean_accuracy']:.2f}", *default_cells(metrics), *pgd, f"{minutes:.1f}",
             paper_headline(card.paper_facts, strides)]
    return "| " + " | ".join(cells) + " |"


def write_table(doc: Path) -> int:
    """Replace the zoo tables in `doc` (each from its header to the next blank line) with every
    shipped card's row, sorted by name: the full table (lab notes) and the compact one (the zoo
    page), whichever `doc` holds; returns the number of rows written."""
    cards = [ModelCard.from_yaml(p) for p in sorted((REPO_ZOO / "fashion-mnist").glob("*.yaml"), key=lambda p: p.stem)]
    text, written = doc.read_text(), 0
    for header, row in ((TABLE_HEADER, table_row), (COMPACT_HEADER, compact_row)):
        if header not in text:
            continue
        start = text.index(header)
        end = text.index("\n\n", start)
        text = text[:start] + header + "\n" + "\n".join(row(card) for card in cards) + text[end:]
        written += len(cards)
    if not written:
        raise SystemExit(f"{doc} holds no zoo table")
    doc.write_text(text)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="default: every shipped Fashion-MNIST card")
    parser.add_argument("--db", default="results/zoo.sqlite")
    parser.add_argument("--new", action="store_true", help="only measure cards without metrics (with --default: without its number)")
    parser.add_argument("--keep-float32", action="store_true", help="do not re-save checkpoints in float16")
    parser.add_argument("--settings", type=int, default=len(SETTINGS), help="measure only the first N settings (the first is the zoo's headline)")
    parser.add_argument("--default", action="store_true", help="measure the default evaluation (auto, checks, verdict) instead of PGD-20")
    parser.add_argument("--eot", type=int, help="with --default: EOT draws per gradient for models random at inference (default: the evaluation's own)")
    parser.add_argument("--random-n", type=int, default=500, help="with --default: test images for models random at inference")
    parser.add_argument("--batch-size", type=int, default=500, help="with --default: images per committed batch (the rows do not depend on it)")
    parser.add_argument("--table-only", action="store_true", help="print the table from the cards without evaluating")
    parser.add_argument("--write-table", type=Path, nargs="+", metavar="DOC", help="after measuring, replace the zoo tables in each DOC (docs/zoo.md docs/notes/zoo.md) with every shipped card's row")
    args = parser.parse_args()
    import advbench.models.table  # noqa: F401

    models = args.models or sorted(p.stem for p in (REPO_ZOO / "fashion-mnist").glob("*.yaml"))
    print(TABLE_HEADER)
    for model in models:
        path = card_path(model, "fashion-mnist")
        if path is None:
            raise SystemExit(f"no fashion-mnist card for {model}")
        card = ModelCard.from_yaml(path)
        measured = "auto" in card.metrics if args.default else bool(card.metrics)
        measure_now = not args.table_only and not (args.new and measured)
        if measure_now and not args.keep_float32:
            store_half(model)
            card = ModelCard.from_yaml(path)
        card = replace(card, threat_model=default_threat(card.dataset), paper_facts=paper_facts(model))
        if measure_now:
            stochastic = load_model(model, "fashion-mnist")[0].stochastic
            if args.default:
                card = replace(card, metrics={**card.metrics, "auto": measure_default(model, args.db, stochastic, card.threat_model, args.eot, args.random_n, args.batch_size)})
            else:  # PGD-20 replaces every number, the default evaluation's too (it was made on the old weights)
                card = replace(card, metrics=measure(model, args.db, stochastic, SETTINGS[: args.settings]))
        card.to_yaml(path)
        if card.metrics:
            print(table_row(card))
    for doc in args.write_table or []:
        print(f"{write_table(doc)} rows written to {doc}")


if __name__ == "__main__":
    main()
