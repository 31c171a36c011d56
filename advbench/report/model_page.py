"""One model's report as a self-contained HTML page: inline CSS, figures as PNG data URIs.

Sections: accuracy per threat model (clean and worst-case robust accuracy with Clopper-Pearson
95% intervals, the attack that found it, verdict, cost, the paper's number where its setting is
the row's), accuracy vs eps, the gradient-masking checks, per-class robust accuracy, the most
deceptive adversarial examples (when the caller re-created them), certified accuracy vs L2 radius,
and provenance. Every number is a cell of a table with stable `id`s, so tests read them back.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from advbench.report.figures import example_grid, line_plot
from advbench.report.intervals import mean_interval
from advbench.report.leaderboard import found_by_text, pct
from advbench.report.merge import ThreatResult, merge_notes
from advbench.report.model_report import ExampleImages, ModelReport
from advbench.report.paper import paper_numbers
from advbench.store import REPORTED_RADII

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#f0f0f0} td.text{text-align:left}
img{max-width:100%;display:block;margin:0.5em 0}
.unreliable,.failed{color:#b00;font-weight:bold} .escalated{color:#a60} .reliable,.passed{color:#070}
.note{color:#555;font-style:italic}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(
    table_id: str,
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    text_columns: Sequence[int] = (),
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='text'>{_e(c)}</td>" if i in text_columns else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table id='{table_id}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _interval(ci: tuple[float, float]) -> str:
    return f"{pct(ci[0])}-{pct(ci[1])}"


def _accuracy(report: ModelReport) -> str:
    if not report.results:
        return "<h2>Accuracy per threat model</h2><p class='note'>No evaluation among the reported runs.</p>"
    rows = []
    for r in report.results:
        t = r.threat
        paper, own = paper_numbers(r.paper, t.dataset, t.norm, t.eps)
        cost = (
            "not reported"
            if r.passes_lower_bound and not r.passes_per_sample
            else (">= " if r.passes_lower_bound else "") + f"{r.passes_per_sample:.1f}"
        )
        note = "; ".join(merge_notes(r.sample_sets, r.one_pass_runs))
        rows.append(
            [
                r.checkpoint[:12],
                t.dataset,
                t.norm,
                f"{t.eps:g}",
                r.n,
                pct(r.clean),
                _interval(report.interval(r.clean, r.n)),
                pct(r.worst_case),
                _interval(report.interval(r.worst_case, r.n)),
                found_by_text(r.found_by),
                r.verdict or "-",
                cost,
                f"{r.seconds_per_sample:.3g}",
                paper or "-",
                own or "-",
                " ".join(r.run_ids),
                note,
            ]
        )
    header = [
        "checkpoint",
        "dataset",
        "norm",
        "eps",
        "n",
        "clean %",
        "clean 95% CI",
        "robust %",
        "robust 95% CI",
        "found by",
        "verdict",
        "passes/sample",
        "attack s/sample",
        "paper %",
        "paper (own setting)",
        "runs",
        "note",
    ]
    return (
        "<h2>Accuracy per threat model</h2><p>Robust accuracy is the worst case over every attack of every stored evaluation at "
        "that budget, merged per sample (Clopper-Pearson 95% intervals).</p>"
        + _table("accuracy", header, rows, (0, 1, 2, 9, 10, 13, 14, 15, 16))
        + _expected(report)
    )


def _expected(report: ModelReport) -> str:
    """Random models: what the votes say beside the robust accuracy (one line per threat)."""
    lines = [
        f"<li>{html.escape(r.threat.label)} ({r.checkpoint[:12]}): expected robust accuracy "
        f"{pct(r.expected)} % (95% t-interval {_interval(mean_interval(r.expected, r.expected_sd, r.n))})</li>"
        for r in report.results
        if r.expected is not None and r.expected_sd is not None
    ]
    if not lines:
        return ""
    return (
        "<p>This model is random at inference: every point was judged by a vote of fresh draws "
        "with a sequential test (robust = the vote did not decide the point wrong), and the "
        "expected robust accuracy is the mean over images of P(correct) at each image's worst "
        "point.</p><ul>" + "".join(lines) + "</ul>"
    )


def _curves(report: ModelReport) -> str:
    images = [
        line_plot(series, f"eps ({norm})", "robust accuracy %", f"robust accuracy vs eps ({norm})")
        for norm, series in sorted(report.curves.items())
    ]
    if not report.results:
        return ""
    if not images:
        return "<h2>Robust accuracy vs eps</h2><p class='note'>Every evaluation of this model used one budget per norm: no curve.</p>"
    return "<h2>Robust accuracy vs eps</h2>" + "".join(
        f"<img alt='robust accuracy vs eps' src='{uri}'>" for uri in images
    )


def _checks(report: ModelReport) -> str:
    if not report.checks:
        return "<h2>Gradient-masking checks</h2><p class='note'>No evaluation of this model ran the checks (--no-checks).</p>"
    parts = ["<h2>Gradient-masking checks</h2>"]
    for c in report.checks:
        parts.append(
            f"<h3>run {_e(c.run_id)} ({_e(c.setting)}): verdict <span class='{_e(c.verdict)}'>{_e(c.verdict or '-')}</span></h3>"
        )
        rows = [
            [
                r["name"],
                "passed" if r["passed"] else "failed",
                f"{r['value']:.4g}",
                f"{'>=' if r.get('at_least') else '<='} {r['limit']:.4g}",
                r["why"],
            ]
            for r in [*c.checks, *c.rechecks]
        ]
        parts.append(
            _table(
                f"checks-{c.run_id}",
                ["check", "result", "value", "must be", "what a failure means"],
                rows,
                (0, 1, 4),
            )
        )
        parts += [f"<p>adapted: {_e(change)}</p>" for change in c.changes]
    return "".join(parts)


def _per_class(report: ModelReport) -> str:
    """Per checkpoint a table: a row per class, n and clean accuracy of the largest set of samples,
    robust accuracy per threat (with its own n where a threat was measured on other samples)."""
    if not report.results:
        return ""
    parts = ["<h2>Per-class robust accuracy</h2>"]
    by_checkpoint: dict[str, list[ThreatResult]] = {}
    for r in report.results:
        by_checkpoint.setdefault(r.checkpoint, []).append(r)
    for checkpoint, results in by_checkpoint.items():
        base = max(results, key=lambda r: r.n)
        classes = sorted({label for r in results for label in r.per_class})
        rows = []
        for label in classes:
            count, clean, _ = base.per_class.get(label, [0, 0, 0])
            cells = []
            for r in results:
                k, _, robust = r.per_class.get(label, [0, 0, 0])
                cell = pct(robust / k) if k else "-"
                cells.append(cell if k == count else f"{cell} (n={k})")
            rows.append([label, count, pct(clean / count) if count else "-", *cells])
        header = ["class", "n", "clean %", *[f"robust % {r.threat.label}" for r in results]]
        parts.append(
            f"<h3>checkpoint {_e(checkpoint[:12])}</h3>"
            + _table(f"per-class-{checkpoint[:12]}", header, rows)
        )
    return "".join(parts)


def _examples(report: ModelReport, examples: Sequence[ExampleImages], note: str) -> str:
    if not report.results:
        return ""
    parts = ["<h2>Most deceptive adversarial examples</h2>"]
    if note:
        parts.append(f"<p class='note'>{_e(note)}</p>")
    if not examples:
        return "".join(parts)
    parts.append(
        "<p>Per checkpoint, dataset and norm: the broken samples with the smallest perturbation, re-created by running the "
        "stored attack again on them. Rows: the clean image with its label, the adversarial image with the attack, budget and "
        "the model's prediction, the perturbation (scaled to its largest entry, grey = 0) with its norm.</p>"
    )
    grids: dict[tuple[str, str, str], list[ExampleImages]] = {}
    for ex in examples:
        run = report.run(ex.run_id)
        grids.setdefault((run.checkpoint_sha256, run.dataset, ex.norm), []).append(ex)
    for (checkpoint, dataset, norm), items in grids.items():
        rows = [
            (
                ex.clean,
                ex.adversarial,
                f"#{ex.sample_idx} label {ex.label}",
                f"{ex.attack.split(':')[0]} {ex.eps:g}: {ex.adv_pred}",
                f"{norm} {ex.distance:.3g}",
            )
            for ex in items
        ]
        parts.append(
            f"<h3>{_e(dataset)} {_e(norm)} ({_e(checkpoint[:12])})</h3><img alt='adversarial examples' src='{example_grid(rows)}'>"
        )
        table = [
            [
                ex.sample_idx,
                ex.label,
                ex.clean_pred,
                ex.adv_pred,
                ex.attack,
                f"{ex.eps:g}",
                f"{ex.distance:.4g}",
                "yes" if ex.success else "NOT reproduced",
                ex.run_id,
            ]
            for ex in items
        ]
        parts.append(
            _table(
                f"examples-{checkpoint[:12]}-{dataset}-{norm}",
                [
                    "sample",
                    "label",
                    "clean pred",
                    "adversarial pred",
                    "attack",
                    "eps",
                    "distance",
                    "fools the model again",
                    "run",
                ],
                table,
                (4, 7, 8),
            )
        )
    return "".join(parts)


def _certified(report: ModelReport) -> str:
    if not report.certified:
        return ""
    series = [(f"sigma {c.sigma} (run {c.run_id})", c.radii, c.accuracy) for c in report.certified]
    uri = line_plot(
        series, "L2 radius", "certified accuracy %", "certified accuracy vs radius (Cohen et al.)"
    )
    rows = []
    for c in report.certified:
        at = dict(zip(c.radii, c.accuracy))
        rows.append(
            [
                c.run_id,
                c.dataset,
                c.sigma,
                *[pct(at[r]) if r in at else "-" for r in REPORTED_RADII],
                pct(c.abstain),
                pct(c.predict_accuracy),
            ]
        )
    header = [
        "run",
        "dataset",
        "sigma",
        *[f"r={r:g} %" for r in REPORTED_RADII],
        "abstain %",
        "PREDICT accuracy %",
    ]
    return (
        f"<h2>Certified accuracy vs L2 radius</h2><img alt='certified accuracy vs radius' src='{uri}'>"
        + _table("certified", header, rows, (0, 1))
    )


def _provenance(report: ModelReport) -> str:
    rows = []
    for r in report.runs:
        attacks = ", ".join(r.config.get("attack_names") or []) or ", ".join(
            f"sigma {s:g}" for s in r.config.get("sigmas") or []
        )
        threat = f"{r.config.get('norm', 'l2')} {', '.join(f'{e:g}' for e in r.config.get('eps', []))}".strip()
        rows.append(
            [
                r.run_id,
                r.kind,
                r.status,
                r.created,
                r.checkpoint_sha256,
                f"{r.dataset} (indices {r.indices_hash})",
                r.n_samples,
                r.seed,
                threat,
                attacks,
                r.device,
                r.package_version,
                r.git_commit or "-",
                ", ".join(f"{k} {v}" for k, v in r.libraries.items()),
                f"{r.wall_seconds:.1f}",
            ]
        )
    header = [
        "run",
        "kind",
        "status",
        "created",
        "checkpoint sha256",
        "dataset",
        "n",
        "seed",
        "threat",
        "attacks",
        "device",
        "advbench",
        "git commit",
        "libraries",
        "wall s",
    ]
    left_out = (
        f"<p class='note'>Left out, unfinished: {_e(', '.join(report.unfinished))}</p>"
        if report.unfinished
        else ""
    )
    return (
        "<h2>Provenance</h2>" + _table("provenance", header, rows, tuple(range(0, 15))) + left_out
    )


def render_model_page(
    report: ModelReport, examples: Sequence[ExampleImages] = (), examples_note: str = ""
) -> str:
    """The report as one HTML document."""
    what = (
        f"run {report.runs[0].run_id}"
        if report.target != report.model
        else f"{len(report.runs)} stored runs"
    )
    facts = report.results[0].paper if report.results else {}
    paper = (
        f" Paper: {_e(facts.get('paper_name', ''))} ({_e(facts.get('paper', ''))}, {_e(facts.get('section', ''))})."
        if facts
        else ""
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>advbench report: {_e(report.model)}</title><style>{STYLE}</style></head><body>"
        f"<h1>advbench report: {_e(report.model)}</h1><p>From {_e(what)}.{paper}</p>"
        + _accuracy(report)
        + _curves(report)
        + _checks(report)
        + _per_class(report)
        + _examples(report, examples, examples_note)
        + _certified(report)
        + _provenance(report)
        + "</body></html>\n"
    )
