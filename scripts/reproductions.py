"""Write docs/notes/reproductions.md's tables from the reproduction suites' stored runs.

Each cell is our number from one stored run (with its Wilson 95 % interval and run id) beside
the paper's number from the model's paper facts (advbench/models/paper_facts.yaml); cells more
than 3 points apart are marked, and the document explains each. Tables are replaced between
`<!-- table:NAME -->` and `<!-- end:NAME -->` markers, so the prose around them stays.
Run: python scripts/reproductions.py --db results/reproductions.sqlite [--write docs/notes/reproductions.md]
"""

from __future__ import annotations

import argparse
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

from advbench.attacks.registry import attack_label
from advbench.store.certificates import certified_accuracy
from advbench.models.card import ModelCard, card_path
from advbench.models.paper import paper_facts
from advbench.report.curves import minimum_norm_stats, worst_minimum_norm_curve
from advbench.report.leaderboard import wilson
from advbench.store import RunSummary, Store, summarize

IMG = Path(__file__).resolve().parents[1] / "docs" / "img"  # the figures the reproduction notes show
MARK = 0.03  # differences above 3 points are marked and explained in the document


@dataclass(frozen=True)
class Cell:
    value: float
    n: int
    run_id: str
    clean: float
    median_norm: float | None = None  # minimum-norm attacks: median smallest perturbation over successes
    created: str = ""


@functools.cache
def shipped_card(model: str, dataset: str) -> ModelCard | None:
    path = card_path(model, dataset)
    return ModelCard.from_yaml(path) if path else None


def of_shipped_checkpoint(run) -> bool:
    """Whether the run measured the checkpoint its zoo model ships now (a retrained model's
    older runs stay in the database, quoted in prose, but never fill a table)."""
    card = shipped_card(run.model, run.dataset)
    return card is None or card.sha256 == run.checkpoint_sha256


def stored_cells(store: Store) -> dict[tuple[str, str, str, float], Cell]:
    """(model, attack label, norm, eps) -> the newest finished single-attack run of the shipped checkpoint."""
    cells: dict[tuple[str, str, str, float], Cell] = {}
    for run in sorted(store.list_runs(limit=100_000), key=lambda r: r.created):
        if run.kind != "eval" or run.status != "finished" or run.dataset != "fashion-mnist" or len(run.config["attack_names"]) != 1:
            continue
        if not of_shipped_checkpoint(run):
            continue
        summary = summarize(store, run.run_id)
        attack = run.config["attack_names"][0]
        median = minimum_norm_stats(store, run.run_id, attack)["median_norm"]
        for per in summary.per_eps:
            cells[(run.model, attack, summary.norm, per.eps)] = Cell(per.worst_case, summary.n, run.run_id, summary.clean_accuracy, median, run.created)
    return cells


def external_rows(store: Store) -> list[tuple[str, str, str, float, Cell]]:
    """(dataset, model file:NAME, attack, eps, cell) for finished runs of external models (file:PATH.py:NAME):
    the newest run per dataset, model, attack, eps and number of images."""
    rows: dict[tuple, tuple[str, str, str, float, Cell]] = {}
    for run in sorted(store.list_runs(limit=100_000), key=lambda r: r.created):
        if run.kind != "eval" or run.status != "finished" or not run.model.startswith("file:"):
            continue
        summary = summarize(store, run.run_id)
        path, _, attr = run.model[len("file:") :].rpartition(":")
        name = f"file:{Path(path).name}:{attr}"  # the file's name only: the full path is this machine's
        for per in summary.per_eps:
            for attack in run.config["attack_names"]:
                dataset = Path(run.dataset.partition(":")[2]).name or run.dataset
                rows[(dataset, name, attack, per.eps, summary.n)] = (dataset, name, attack, per.eps, Cell(per.robust_after[attack], summary.n, run.run_id, summary.clean_accuracy))
    return list(rows.values())


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


CW = "cw:binary_search_steps=5,initial_const=0.01,stepsize=0.005"  # Foolbox 2's C&W defaults
SMOOTH_ATTACKS = [
    # (the suite's spec, norm, eps, the paper's attack name, column)
    ("fgsm-search", "linf", 1.0, "fgsm", "FGSM"),
    ("pgd-search", "linf", 1.0, "pgd", "PGD"),
    ("deepfool:steps=100", "l2", 28.0, "deepfool", "DF L2"),
    ("deepfool:steps=100", "linf", 1.0, "deepfool", "DF Linf"),
    (CW, "l2", 28.0, "cw", "C&W"),
    ("salt-and-pepper", "l2", 28.0, "salt-and-pepper", "S&P"),
]
# Unbounded L2 is eps 28 = sqrt(784), the largest distance in [0,1]^784; runs made before eps was
# validated used 1000, which bounds nothing either and counts as the same cell.
UNBOUNDED_L2 = (28.0, 1000.0)
SMOOTH_MODELS = ("smooth-v", "smooth-vr", "smooth-t", "smooth-tr", "smooth-a", "smooth-ar", "smooth-l", "smooth-lr")


def newest_cell(cells: dict, model: str, spec: str, norm: str, eps: tuple[float, ...]) -> Cell | None:
    """The newest of the model's cells for the attack under any of the budgets `eps` (one unbounded cell)."""
    options = [c for e in eps if (c := cells.get((model, attack_label(spec), norm, e))) is not None]
    return max(options, key=lambda c: c.created, default=None)


def smooth_cells(cells: dict, model: str, attacks: list[tuple] = SMOOTH_ATTACKS) -> list[Cell | None]:
    """The model's newest cell per smooth-kernels attack (unbounded L2 under either eps)."""
    return [newest_cell(cells, model, spec, norm, UNBOUNDED_L2 if norm == "l2" else (eps,)) for spec, norm, eps, _, _ in attacks]


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


# App. B's L0 cells, listed with their runs beside Table 1's (spec, norm, eps, -, column)
L0_ATTACKS = [("salt-and-pepper", "l0", 784.0, None, "S&P L0"), ("fmn", "l0", 784.0, None, "FMN L0")]


def smooth_runs(cells: dict, models: tuple[str, ...] = SMOOTH_MODELS, attacks: list[tuple] = SMOOTH_ATTACKS + L0_ATTACKS) -> str:
    lines = ["| model | " + " | ".join(col for *_, col in attacks) + " |", "|---|" + "---|" * len(attacks)]
    for model in models:
        found = smooth_cells(cells, model, attacks)
        lines.append(f"| {model} | " + " | ".join(f"`{c.run_id}`" if c else "-" for c in found) + " |")
    return "\n".join(lines)


# App. B (Figs. 7-9): accuracy vs eps in L0, L2 and Linf. Every Table 1 cell is a minimum-norm search, so
# the curve of a norm is, per sample, the smallest adversarial any of that norm's cells found.
# norm -> (its cells as (suite spec, the unbounded eps the cell may be stored under), grid, table eps)
APPB_NORMS = {
    "linf": ([("fgsm-search", (1.0,)), ("pgd-search", (1.0,)), ("deepfool:steps=100", (1.0,))],
             [round(0.01 * i, 2) for i in range(31)], (0.05, 0.1, 0.2)),
    "l2": ([("deepfool:steps=100", UNBOUNDED_L2), (CW, UNBOUNDED_L2),
            ("salt-and-pepper", UNBOUNDED_L2)], [round(0.1 * i, 1) for i in range(41)], (0.5, 1.0, 2.0)),
    "l0": ([("salt-and-pepper", (784.0,)), ("fmn", (784.0,))], [float(5 * i) for i in range(41)], (10.0, 25.0, 50.0)),
}
NORM_NAMES = {"linf": "Linf", "l2": "L2", "l0": "L0"}
LAMBDA_MODELS = (("smooth-v", "0"), ("smooth-vr-lambda0p01", "0.01"), ("smooth-vr-lambda0p1", "0.1"), ("smooth-vr-lambda1", "1"),
                 ("smooth-vr-lambda10", "10"), ("smooth-vr", "100"))


@dataclass(frozen=True)
class NormCurve:
    eps: list[float]
    accuracy: list[float]


def appb_curves(store: Store, cells: dict, models: tuple[str, ...], skip: tuple[str, ...] = ()) -> dict[tuple[str, str], NormCurve]:
    """(model, norm) -> the worst case over the model's newest cells of that norm but the `skip`ped
    attacks (`cells`: this store's), for every model that has all of them."""
    curves = {}
    for model in models:
        for norm, (specs, grid, _) in APPB_NORMS.items():
            found = [newest_cell(cells, model, spec, norm, eps) for spec, eps in specs if spec not in skip]
            if any(c is None for c in found):
                continue
            points = worst_minimum_norm_curve(store, [c.run_id for c in found], grid)
            curves[(model, norm)] = NormCurve([e for e, _ in points], [a for _, a in points])
    return curves


def appb_table(curves: dict[tuple[str, str], NormCurve], models: tuple[str, ...]) -> str:
    cols = [(norm, e) for norm, (_, _, eps) in APPB_NORMS.items() for e in eps]
    lines = ["| model | " + " | ".join(f"{NORM_NAMES[norm]} {e:g}" for norm, e in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for model in models:
        row = []
        for norm, e in cols:
            c = curves.get((model, norm))
            row.append(f"{100 * c.accuracy[c.eps.index(e)]:.1f}" if c else "not run")
        lines.append(f"| {model} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def appb_figures(curves: dict[tuple[str, str], NormCurve], models: tuple[str, ...], folder: Path, stem: str) -> None:
    from advbench.report.figures import line_figure, save_figure

    for norm in APPB_NORMS:
        series = [(m, c.eps, c.accuracy) for m in models if (c := curves.get((m, norm)))]
        if series:
            unit = " (changed pixels)" if norm == "l0" else ""
            save_figure(line_figure(series, f"{NORM_NAMES[norm]}{unit} eps", title=f"smooth kernels App. B, Fashion-MNIST, {NORM_NAMES[norm]}: worst case"),
                        folder / f"{stem}-{norm}.png")


def lambda_table(cells: dict, curves: dict[tuple[str, str], NormCurve], default_eval: dict[str, dict]) -> str:
    """The lambda grid on VR: clean, the default evaluation at the zoo's Linf 0.1 (from the model card),
    the unbounded cells' failure shares, the median DeepFool L2 norm and the App. B accuracies, all
    without C&W (the sweep's suite leaves it out for its cost)."""
    attacks = [a for a in SMOOTH_ATTACKS if a[0] != CW]
    lines = ["| lambda | model | clean % | default eval, Linf 0.1 % (verdict) | " + " | ".join(col for *_, col in attacks)
             + " | median DF L2 | Linf 0.1 | L2 1.0 | L0 25 |", "|---|---|---|---|" + "---|" * len(attacks) + "---|---|---|---|"]
    for model, lam in LAMBDA_MODELS:
        found = smooth_cells(cells, model, attacks)
        first = next((c for c in found if c is not None), None)
        auto = default_eval.get(model)
        auto_cell = f"{100 * auto['accuracy']:.1f} ({auto['verdict']}, `{auto['run']}`)" if auto else "not run"
        df_l2 = found[[col for *_, col in attacks].index("DF L2")]
        at = [f"{100 * c.accuracy[c.eps.index(e)]:.1f}" if (c := curves.get((model, norm))) else "not run"
              for norm, e in (("linf", 0.1), ("l2", 1.0), ("l0", 25.0))]
        lines.append(f"| {lam} | {model} | {f'{100 * first.clean:.1f}' if first else 'not run'} | {auto_cell} | "
                     + " | ".join(f"{100 * c.value:.1f}" if c else "not run" for c in found)
                     + f" | {f'{df_l2.median_norm:.3f}' if df_l2 and df_l2.median_norm is not None else '-'} | " + " | ".join(at) + " |")
    return "\n".join(lines)


def card_default_evals() -> dict[str, dict]:
    """model -> its card's default evaluation (metrics.auto: accuracy, verdict, run) for the lambda grid."""
    found = {}
    for model, _ in LAMBDA_MODELS:
        card = shipped_card(model, "fashion-mnist")
        auto = card.metrics.get("auto") if card else None
        if auto:
            found[model] = auto
    return found


# Foolbox 2.4's classes behind each Table 1 column (scripts/foolbox2_table1.py stores them as `foolbox2:<class>`).
FOOLBOX2_ATTACKS = {"FGSM": "GradientSignAttack", "PGD": "ProjectedGradientDescentAttack", "DF L2": "DeepFoolL2Attack",
                    "DF Linf": "DeepFoolLinfinityAttack", "C&W": "CarliniWagnerL2Attack", "S&P": "SaltAndPepperNoiseAttack"}


def foolbox2_table(cells: dict) -> str:
    """Foolbox 2.4's own attacks on the same checkpoints (scripts/foolbox2_table1.py, stored as runs):
    share of failures in percent beside the paper's, the median distance found and the run."""
    cols = [col for *_, col in SMOOTH_ATTACKS]
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for model in SMOOTH_MODELS:
        row = []
        for (_, norm, eps, theirs, col) in SMOOTH_ATTACKS:
            c = cells.get((model, f"foolbox2:{FOOLBOX2_ATTACKS[col]}", norm, UNBOUNDED_L2[0] if norm == "l2" else eps))
            if c is None:  # Foolbox 2 runs one sample at a time: not every cell fitted the CPU budget
                row.append("-")
                continue
            paper = paper_value(model, "attack_failure_rate", theirs, None if theirs == "salt-and-pepper" else norm)
            median = "-" if c.median_norm is None else f"{c.median_norm:.3f}"
            row.append((f"{100 * c.value:.1f} / {100 * paper:.1f}" if paper is not None else f"{100 * c.value:.1f}") + f" (median {median}, n={c.n}, `{c.run_id}`)")
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
        if run.kind != "certify" or run.status != "finished" or run.model not in FIG6_MODELS or not sequential.get("radii") or not of_shipped_checkpoint(run):
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
        if run.kind != "eval" or run.status != "finished" or run.model not in wanted or run.config["attack_names"][0] != "auto" or not of_shipped_checkpoint(run):
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


def build_tables(cells: dict, external: list | None = None, curves: list | None = None,
                 fig4: dict | None = None, appb: dict | None = None, appb_lambda: dict | None = None,
                 default_eval: dict | None = None) -> dict[str, str]:
    tables = {
        "table41": dissertation_table(cells), "fig47": curve_table(cells),
        "smooth": smooth_table(cells), "smooth-norms": smooth_norms(cells), "smooth-runs": smooth_runs(cells),
    }
    if appb:
        tables["smooth-appb"] = appb_table(appb, SMOOTH_MODELS)
    if appb_lambda:
        tables["smooth-lambda"] = lambda_table(cells, appb_lambda, default_eval or {})
        tables["smooth-lambda-runs"] = smooth_runs(cells, tuple(m for m, _ in LAMBDA_MODELS), [a for a in SMOOTH_ATTACKS + L0_ATTACKS if a[0] != CW])
    if any(label.startswith("foolbox2:") for _, label, _, _ in cells):
        tables["foolbox2"] = foolbox2_table(cells)
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
    parser.add_argument("--write", type=Path, help="replace the tables in this document (else print them)")
    args = parser.parse_args()
    cells: dict = {}
    external: list = []
    curves: list = []
    fig4: dict = {}
    appb: dict = {}
    appb_lambda: dict = {}
    for db in args.db:
        with Store(db) as store:
            store_cells = stored_cells(store)
            cells.update(store_cells)
            appb.update(appb_curves(store, store_cells, SMOOTH_MODELS))
            appb_lambda.update(appb_curves(store, store_cells, tuple(m for m, _ in LAMBDA_MODELS), skip=(CW,)))
            external += external_rows(store)
            curves += certified_curves(store)
            fig4.update(fig4_runs(store))
    tables = build_tables(cells, external, curves, fig4, appb, appb_lambda, card_default_evals())
    if args.write is None:
        for name, table in tables.items():
            print(f"## {name}\n\n{table}\n")
        return
    text = args.write.read_text()
    for name, table in tables.items():
        text = replace_block(text, name, table)
    args.write.write_text(text)
    if curves:
        fig6_figure(curves, IMG / "kap-fig6.png")
    if appb:
        appb_figures(appb, SMOOTH_MODELS, IMG, "smooth-appb")
    if appb_lambda:
        appb_figures(appb_lambda, tuple(m for m, _ in LAMBDA_MODELS), IMG, "smooth-lambda")


if __name__ == "__main__":
    main()
