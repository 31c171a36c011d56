"""Write docs/reproductions.md's tables from the reproduction suites' stored runs.

Each cell is our number from one stored run (with its Wilson 95 % interval and run id) beside
the paper's number from the model's paper facts (advbench/models/paper_facts.yaml); cells more
than 3 points apart are marked, and the document explains each. Tables are replaced between
`<!-- table:NAME -->` and `<!-- end:NAME -->` markers, so the prose around them stays.
Run: python scripts/reproductions.py --db results/reproductions.sqlite [--foolbox2 docs/runs/foolbox2-table1.json]
     [--write docs/reproductions.md]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from advbench.attacks.registry import attack_label
from advbench.engine.certify import certified_accuracy
from advbench.models.paper import paper_facts
from advbench.report.curves import minimum_norm_stats
from advbench.report.leaderboard import wilson
from advbench.store import RunSummary, Store, summarize

MARK = 0.03  # differences above 3 points are marked and explained in the document


@dataclass(frozen=True)
class Cell:
    value: float
    n: int
    run_id: str
    clean: float
    median_norm: float | None = None  # minimum-norm attacks: median smallest perturbation over successes
    created: str = ""


def stored_cells(store: Store) -> dict[tuple[str, str, str, float], Cell]:
    """(model, attack label, norm, eps) -> the newest finished single-attack run."""
    cells: dict[tuple[str, str, str, float], Cell] = {}
    for run in sorted(store.list_runs(limit=100_000), key=lambda r: r.created):
        if run.kind != "eval" or run.status != "finished" or run.dataset != "fashion-mnist" or len(run.config["attack_names"]) != 1:
            continue
        summary = summarize(store, run.run_id)
        attack = run.config["attack_names"][0]
        median = minimum_norm_stats(store, run.run_id, attack)["median_norm"]
        for per in summary.per_eps:
            cells[(run.model, attack, summary.norm, per.eps)] = Cell(per.worst_case, summary.n, run.run_id, summary.clean_accuracy, median, run.created)
    return cells


def external_rows(store: Store) -> list[tuple[str, str, str, float, Cell]]:
    """(dataset, model file:NAME, attack, eps, cell) for finished runs of external models (file:PATH.py:NAME)."""
    rows = []
    for run in sorted(store.list_runs(limit=100_000), key=lambda r: r.created):
        if run.kind != "eval" or run.status != "finished" or not run.model.startswith("file:"):
            continue
        summary = summarize(store, run.run_id)
        path, _, attr = run.model[len("file:") :].rpartition(":")
        name = f"file:{Path(path).name}:{attr}"  # the file's name only: the full path is this machine's
        for per in summary.per_eps:
            for attack in run.config["attack_names"]:
                rows.append((Path(run.dataset.partition(":")[2]).name or run.dataset, name, attack, per.eps, Cell(per.robust_after[attack], summary.n, run.run_id, summary.clean_accuracy)))
    return rows


def external_table(rows: list[tuple[str, str, str, float, Cell]]) -> str:
    lines = ["| dataset | model | n | clean | attack | Linf eps | robust | run |", "|---|---|---|---|---|---|---|---|"]
    for dataset, model, attack, eps, c in rows:
        low, high = wilson(c.clean, c.n)
        lines.append(f"| {dataset} | `{model}` | {c.n} | {100 * c.clean:.1f} [{100 * low:.1f}, {100 * high:.1f}] | {attack} | {eps:g} ({eps * 255:.2g}/255) | {pair(c, None)} | `{c.run_id}` |")
    return "\n".join(lines)


def paper_value(model: str, metric: str, attack: str | None = None, norm: str | None = None, eps: float | None = None) -> float | None:
    for r in paper_facts(model).get("reported", []):
        if r.get("dataset") != "fashion-mnist" or r.get("metric") != metric:
            continue
        if attack is not None and r.get("attack") != attack:
            continue
        if norm is not None and r.get("norm") not in (norm, None):
            continue
        if eps is not None and not math.isclose(float(r.get("eps") or -1), eps):
            continue
        return float(r["value"])
    return None


def pair(ours: Cell | None, theirs: float | None, value: float | None = None) -> str:
    """'ours [CI] / paper (diff)', the difference marked with ! above 3 points."""
    if ours is None:
        return "not run"
    v = ours.value if value is None else value
    low, high = wilson(v, ours.n)
    text = f"{100 * v:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
    if theirs is None:
        return text
    diff = v - theirs
    flag = " !" if abs(diff) > MARK else ""
    return f"{text} / {100 * theirs:.1f} ({100 * diff:+.1f}{flag})"


TABLE41_MODELS = ("madry-cnn", "madry-cnn-at", "pfe-madry")
TABLE41_ATTACKS = [
    # (the suite's spec, the paper's attack name, column)
    ("fgsm", "fgsm", "FGSM"),
    ("bim:steps=20,rel_stepsize=0.1", "bim", "BIM-20"),
    ("pgd:restarts=20,steps=100,rel_stepsize=0.1", "pgd", "PGD 20x100"),
]


def dissertation_table(cells: dict) -> str:
    """Table 4.1 cell by cell, plus AutoAttack (not in the paper) where we ran it, to tell an
    attack's weakness from the model's robustness."""
    lines = [
        "| model (paper's row) | clean | " + " | ".join(col for *_, col in TABLE41_ATTACKS) + " | AutoAttack (ours only) | runs |",
        "|---|---|" + "---|" * len(TABLE41_ATTACKS) + "---|---|",
    ]
    for model in TABLE41_MODELS:
        found = [cells.get((model, attack_label(spec), "linf", 0.1)) for spec, _, _ in TABLE41_ATTACKS]
        autoattack = cells.get((model, "autoattack", "linf", 0.1))
        first = next((c for c in found if c is not None), None)
        clean = pair(first, paper_value(model, "clean_accuracy"), first.clean if first else None)
        row = [pair(c, paper_value(model, "robust_accuracy", theirs, "linf", 0.1)) for c, (_, theirs, _) in zip(found, TABLE41_ATTACKS)]
        row.append(pair(autoattack, None) + f" (n={autoattack.n})" if autoattack else "-")
        runs = ", ".join(f"`{c.run_id}`" for c in [*found, autoattack] if c is not None)
        lines.append(f"| {model} ({paper_facts(model).get('paper_name', '')}) | {clean} | " + " | ".join(row) + f" | {runs} |")
    return "\n".join(lines)


def curve_table(cells: dict, eps_values: tuple[float, ...] = (0.02, 0.05, 0.1, 0.15, 0.2)) -> str:
    lines = ["| model | clean | " + " | ".join(f"eps {e:g}" for e in eps_values) + " | run |", "|---|---|" + "---|" * len(eps_values) + "---|"]
    for model in TABLE41_MODELS:
        found = [cells.get((model, attack_label("pgd:steps=100,rel_stepsize=0.1"), "linf", e)) for e in eps_values]
        found_any = [c for c in found if c is not None]
        clean = f"{100 * found_any[0].clean:.1f}" if found_any else "not run"
        row = [f"{100 * c.value:.1f}" if c else "not run" for c in found]
        runs = ", ".join(sorted({f"`{c.run_id}`" for c in found_any}))
        lines.append(f"| {model} | {clean} | " + " | ".join(row) + f" | {runs} |")
    return "\n".join(lines)


SMOOTH_ATTACKS = [
    # (the suite's spec, norm, eps, the paper's attack name, column)
    ("fgsm-search", "linf", 1.0, "fgsm", "FGSM"),
    ("pgd-search", "linf", 1.0, "pgd", "PGD"),
    ("deepfool:steps=100", "l2", 28.0, "deepfool", "DF L2"),
    ("deepfool:steps=100", "linf", 1.0, "deepfool", "DF Linf"),
    ("cw:binary_search_steps=5,initial_const=0.01,stepsize=0.005", "l2", 28.0, "cw", "C&W"),
    ("salt-and-pepper", "l2", 28.0, "salt-and-pepper", "S&P"),
]
# Unbounded L2 is eps 28 = sqrt(784), the largest distance in [0,1]^784; runs made before eps was
# validated used 1000, which bounds nothing either and counts as the same cell.
UNBOUNDED_L2 = (28.0, 1000.0)
SMOOTH_MODELS = ("smooth-v", "smooth-vr", "smooth-t", "smooth-tr", "smooth-a", "smooth-ar", "smooth-l", "smooth-lr")


def smooth_cells(cells: dict, model: str, attacks: list[tuple] = SMOOTH_ATTACKS) -> list[Cell | None]:
    """The model's newest cell per smooth-kernels attack (unbounded L2 under either eps)."""
    found = []
    for spec, norm, eps, _, _ in attacks:
        options = [cells.get((model, attack_label(spec), norm, e)) for e in (UNBOUNDED_L2 if norm == "l2" else (eps,))]
        found.append(max((c for c in options if c is not None), key=lambda c: c.created, default=None))
    return found


def smooth_table(cells: dict) -> str:
    lines = [
        "| model | clean | " + " | ".join(col for *_, col in SMOOTH_ATTACKS) + " |",
        "|---|---|" + "---|" * len(SMOOTH_ATTACKS),
    ]
    for model in SMOOTH_MODELS:
        found = smooth_cells(cells, model)
        first = next((c for c in found if c is not None), None)
        clean = pair(first, paper_value(model, "clean_accuracy"), first.clean if first else None)
        row = [
            pair(c, paper_value(model, "attack_failure_rate", theirs, None if theirs == "salt-and-pepper" else norm))
            for c, (_, norm, _, theirs, _) in zip(found, SMOOTH_ATTACKS)
        ]
        lines.append(f"| {model} ({paper_facts(model).get('paper_name', '')}) | {clean} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def smooth_norms(cells: dict) -> str:
    """Median smallest perturbation each attack found (over its successes): the bounded view of the same
    runs. Not for pgd-search, whose norm is the budget of its first success (it does not bisect)."""
    cols = [a for a in SMOOTH_ATTACKS if a[0] != "pgd-search"]
    lines = ["| model | " + " | ".join(col for *_, col in cols) + " |", "|---|" + "---|" * len(cols)]
    for model in SMOOTH_MODELS:
        found = smooth_cells(cells, model, cols)
        lines.append(f"| {model} | " + " | ".join(f"{c.median_norm:.3f}" if c and c.median_norm is not None else "-" for c in found) + " |")
    return "\n".join(lines)


def smooth_runs(cells: dict) -> str:
    lines = ["| model | " + " | ".join(col for *_, col in SMOOTH_ATTACKS) + " |", "|---|" + "---|" * len(SMOOTH_ATTACKS)]
    for model in SMOOTH_MODELS:
        found = smooth_cells(cells, model)
        lines.append(f"| {model} | " + " | ".join(f"`{c.run_id}`" if c else "-" for c in found) + " |")
    return "\n".join(lines)


def foolbox2_table(results: dict) -> str:
    """Foolbox 2.4's own attacks on the same checkpoints (scripts/foolbox2_table1.py): share of failures
    in percent, then the median distance found, beside the paper's share."""
    cols = [col for *_, col in SMOOTH_ATTACKS]
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for model in SMOOTH_MODELS:
        row = []
        for (_, norm, _, theirs, col) in SMOOTH_ATTACKS:
            r = results.get(model, {}).get(col)
            if r is None:  # Foolbox 2 runs one sample at a time: not every cell fitted the CPU budget
                row.append("-")
                continue
            paper = paper_value(model, "attack_failure_rate", theirs, None if theirs == "salt-and-pepper" else norm)
            median = "-" if r["median_norm"] is None else f"{r['median_norm']:.3f}"
            row.append(f"{100 * r['failure_share']:.1f} / {100 * paper:.1f} (median {median}, n={r['n']})" if paper is not None else f"{100 * r['failure_share']:.1f}")
        lines.append(f"| {model} | " + " | ".join(row) + " |")
    return "\n".join(lines)


FIG6_MODELS = ("rn18-nt-noise", "kap-rn18")  # KAP paper Fig. 6: RN18-NT(0.1) and RN18-NT-KAP(0.1)


@dataclass(frozen=True)
class CertifiedCurve:
    model: str
    sigma: float
    run_id: str
    radii: tuple[float, ...]
    accuracy: tuple[float, ...]  # certified accuracy at each asked radius
    n: int
    median_passes: int


def certified_curves(store: Store) -> list[CertifiedCurve]:
    """The newest finished sequential certification of each Fig. 6 model and sigma, at the radii it decided."""
    newest: dict[tuple[str, float], CertifiedCurve] = {}
    for run in sorted(store.list_runs(limit=100_000), key=lambda r: r.created):
        sequential = run.config.get("sequential") or {}
        if run.kind != "certify" or run.status != "finished" or run.model not in FIG6_MODELS or not sequential.get("radii"):
            continue
        radii = tuple(float(r) for r in sequential["radii"])
        rows = store.certificate_rows(run.run_id)
        for sigma in (float(s) for s in run.config["sigmas"]):
            mine = [r for r in rows if r["sigma"] == sigma]
            accuracy = tuple(certified_accuracy(mine, radius) for radius in radii)
            passes = sorted(r["forward_passes"] for r in mine)
            newest[(run.model, sigma)] = CertifiedCurve(run.model, sigma, run.run_id, radii, accuracy, len(mine), passes[len(passes) // 2])
    return sorted(newest.values(), key=lambda c: (FIG6_MODELS.index(c.model), c.sigma))


def fig6_table(curves: list[CertifiedCurve]) -> str:
    radii = sorted({r for c in curves for r in c.radii})
    lines = ["| model | sigma | n | " + " | ".join(f"r = {r:g}" for r in radii) + " | median passes per image | run |",
             "|---|---|---|" + "---|" * len(radii) + "---|---|"]
    for c in curves:
        cells = [f"{100 * c.accuracy[c.radii.index(r)]:.0f}" if r in c.radii else "-" for r in radii]
        lines.append(f"| {c.model} | {c.sigma:g} | {c.n} | " + " | ".join(cells) + f" | {c.median_passes:,} | {c.run_id[:12]} |")
    return "\n".join(lines)


def fig6_figure(curves: list[CertifiedCurve], path: Path) -> None:
    from advbench.report.figures import line_figure, save_figure

    series = [(f"{c.model} sigma {c.sigma:g}", c.radii, c.accuracy) for c in curves]
    save_figure(line_figure(series, "L2 radius", "certified accuracy %", "KAP paper Fig. 6 on Fashion-MNIST (sequential certification)"), path)


# KAP paper Fig. 4 (AutoAttack-L2 eps 1.0, plots only): panel -> (model, what varies).
FIG4_PANELS = {
    "a: depth": [(f"{kap}cnn{d}", f"{d} layer{'s' if d > 1 else ''}, {'KAP K=3' if kap else 'no KAP'}") for kap in ("", "kap-") for d in (1, 2, 3)],
    "b: ensemble size": [(f"kap-cnn3-k{k}s{k}", f"K = S = {k}, {16 * k * k} kernels") for k in (1, 2, 3, 4)],
    "c: training noise": [(m, f"sigma {s}") for m, s in (("kap-cnn3-sigma0", "0"), ("kap-cnn3-sigma0p05", "0.05"), ("kap-cnn3", "0.1"), ("kap-cnn3-sigma0p2", "0.2"))],
}


def fig4_runs(store: Store) -> dict[str, RunSummary]:
    """model -> the newest finished default evaluation (`auto` first) at L2 eps 1.0 of a Fig. 4 model."""
    wanted = {m for panel in FIG4_PANELS.values() for m, _ in panel}
    newest: dict[str, RunSummary] = {}
    for run in sorted(store.list_runs(limit=100_000), key=lambda r: r.created):
        if run.kind != "eval" or run.status != "finished" or run.model not in wanted or run.config["attack_names"][0] != "auto":
            continue
        summary = summarize(store, run.run_id)
        if summary.norm == "l2" and [p.eps for p in summary.per_eps] == [1.0]:
            newest[run.model] = summary
    return newest


def fig4_table(runs: dict[str, RunSummary]) -> str:
    lines = ["| panel | model | setting | clean % | default eval, L2 eps 1.0 % [95 % CI] | verdict | run |", "|---|---|---|---|---|---|---|"]
    for panel, models in FIG4_PANELS.items():
        for model, setting in models:
            r = runs.get(model)
            if r is None:
                lines.append(f"| {panel} | {model} | {setting} | - | - | - | - |")
                continue
            robust = r.per_eps[0].worst_case
            low, high = wilson(robust, r.n)
            lines.append(f"| {panel} | {model} | {setting} | {100 * r.clean_accuracy:.1f} | {100 * robust:.1f} [{100 * low:.1f}, {100 * high:.1f}] "
                         f"| {r.verdict or '-'} | `{r.run_id}` |")
    return "\n".join(lines)


def build_tables(cells: dict, foolbox2: dict | None = None, external: list | None = None, curves: list | None = None,
                 fig4: dict | None = None) -> dict[str, str]:
    tables = {
        "table41": dissertation_table(cells), "fig47": curve_table(cells),
        "smooth": smooth_table(cells), "smooth-norms": smooth_norms(cells), "smooth-runs": smooth_runs(cells),
    }
    if foolbox2 is not None:
        tables["foolbox2"] = foolbox2_table(foolbox2)
    if external is not None:
        tables["external"] = external_table(external)
    if curves:
        tables["kap-fig6"] = fig6_table(curves)
    if fig4:
        tables["kap-fig4"] = fig4_table(fig4)
    return tables


def replace_block(text: str, name: str, table: str) -> str:
    pattern = re.compile(rf"(<!-- table:{name} -->\n)(?:.*?\n)?(<!-- end:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"no <!-- table:{name} --> ... <!-- end:{name} --> block in the document")
    return pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", action="append", required=True, help="result database(s) of the reproduction suites")
    parser.add_argument("--foolbox2", type=Path, help="JSON written by scripts/foolbox2_table1.py")
    parser.add_argument("--write", type=Path, help="replace the tables in this document (else print them)")
    args = parser.parse_args()
    cells: dict = {}
    external: list = []
    curves: list = []
    fig4: dict = {}
    for db in args.db:
        with Store(db) as store:
            cells.update(stored_cells(store))
            external += external_rows(store)
            curves += certified_curves(store)
            fig4.update(fig4_runs(store))
    tables = build_tables(cells, json.loads(args.foolbox2.read_text()) if args.foolbox2 else None, external, curves, fig4)
    if args.write is None:
        for name, table in tables.items():
            print(f"## {name}\n\n{table}\n")
        return
    text = args.write.read_text()
    for name, table in tables.items():
        text = replace_block(text, name, table)
    args.write.write_text(text)
    if curves:
        fig6_figure(curves, args.write.parent / "img" / "kap-fig6.png")


if __name__ == "__main__":
    main()
