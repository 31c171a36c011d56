"""Rich rendering of library results: tables on stdout, progress and diagnostics on stderr.

Every table is sized to the console (`cli/fit.py`): cells wrap between words, never inside a name
or a number; print them with `show`, which prints wider than the console rather than cut.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from advbench.cli.fit import Col, fit_table, table_width
from advbench.cli.fit import show as show_fitted
from advbench.store.certificates import REPORTED_RADII
from advbench.store.sqlite import RunRecord
from advbench.store.summary import RunSummary

if TYPE_CHECKING:  # the results rendered here; their modules load torch, this one must not
    from advbench.engine.suite import CellResult
    from advbench.report.curves import Curve
    from advbench.report.regression import Comparison
    from advbench.store import CertifySummary
    from advbench.train.loop import EpochLog

console = Console()
err_console = Console(stderr=True)


class LazyProgress:
    """Rich progress bars on stderr that appear on the first update, so early errors print alone.

    `update` drives the bar named by `description`; `task(name)` gives the update function of
    another bar in the same display (one per model of a curve).
    """

    def __init__(self, description: str = "") -> None:
        self.description = description
        self.bar: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    def task(self, description: str) -> Callable[[int, int], None]:
        return lambda done, total: self._update(description, done, total)

    def update(self, done: int, total: int) -> None:
        self._update(self.description, done, total)

    def _update(self, description: str, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=err_console,
            )
            self.bar.start()
        if description not in self.tasks:
            self.tasks[description] = self.bar.add_task(description, total=total)
        self.bar.update(self.tasks[description], completed=done, total=total)

    def print(self, text: str) -> None:
        (self.bar.console if self.bar else err_console).print(text)

    def __enter__(self) -> "LazyProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def table(
    title: str,
    columns: Sequence[str | Col],
    rows: Iterable[Sequence[object]],
    caption: str | None = None,
    width: int | None = None,
) -> Table:
    """A table of rich-markup cells sized to `width` (the console's): see `cli/fit.py`."""
    return fit_table(
        title,
        [c if isinstance(c, Col) else Col(c) for c in columns],
        [[str(c) for c in row] for row in rows],
        width or console.width,
        caption=caption,
    )


def show(renderable: Table, to: Console | None = None) -> None:
    """Print a table made here (on stdout unless `to`): wider than the console rather than cut."""
    show_fitted(renderable, to or console)


def summary_table(summary: RunSummary, width: int | None = None) -> Table:
    """A column per attack and a row per eps; turned round (a row per attack) where that is too
    wide for the console."""
    title = f"{summary.model} on {summary.dataset}, n={summary.n}, {summary.norm}"
    columns = [
        "eps",
        "clean %",
        *[f"after {escape(attack_words(a))} %" for a in summary.attacks],
        "worst case %",
    ]
    voted = summary.clean_expected is not None
    if voted:  # a random model judged by votes: the expected figures beside the voted ones
        columns += ["expected robust %"]
    rows = [
        [
            f"{e.eps:g}",
            pct(summary.clean_accuracy),
            *[pct(e.robust_after[a]) for a in summary.attacks],
            f"[bold]{pct(e.worst_case)}[/bold]",
            *([expected_text(e.expected_robust, e.expected_robust_sd, summary.n)] if voted else []),
        ]
        for e in summary.per_eps
    ]
    verdict = f", evaluation {verdict_text(summary.verdict)}" if summary.verdict else ""
    extra = sum(e.broken_by_checks_only for e in summary.per_eps)
    verdict += (
        f"; worst case includes {extra} sample(s) only the checks' probe attacks broke"
        if extra
        else ""
    )
    if voted:
        undecided = sum(e.undecided for e in summary.per_eps)
        verdict += (
            f"; random model, every point judged by a vote ({summary.vote_test or 'see the run config'}); "
            f"expected clean accuracy {expected_text(summary.clean_expected, summary.clean_expected_sd, summary.n)}"
            + (f"; {undecided} undecided at the cap, counted robust" if undecided else "")
        )
    caption = f"run {summary.run_id} ({summary.wall_seconds:.1f} s){verdict}"
    wide = table(title, columns, rows, caption=caption, width=width)
    if table_width(wide) <= (width or console.width):
        return wide
    turned = [[label, *[row[k] for row in rows]] for k, label in enumerate(columns) if k]
    eps = [Col(f"eps {e.eps:g}", justify="right") for e in summary.per_eps]
    return table(title, [Col("accuracy"), *eps], turned, caption=caption, width=width)


def expected_text(mean: float | None, sd: float | None, n: int) -> str:
    """A random model's expected accuracy with its 95 % t-interval."""
    if mean is None or sd is None:
        return "-"
    from advbench.report.intervals import mean_interval  # scipy: only where a random model shows

    low, high = mean_interval(mean, sd, n)
    return f"{pct(mean)} ({pct(low)}-{pct(high)})"


VERDICT_STYLE = {"reliable": "green", "escalated": "yellow", "unreliable": "bold red"}


def verdict_text(verdict: str | None) -> str:
    """The reliability verdict, coloured (rich markup)."""
    if not verdict:
        return "-"
    return (
        f"[{VERDICT_STYLE.get(verdict, 'white')}]{verdict}[/{VERDICT_STYLE.get(verdict, 'white')}]"
    )


def check_text(check: dict[str, object]) -> str:
    """A stored check result in one cell: passed/failed, its value and the limit with its direction."""
    status = "passed" if check["passed"] else "[red]failed[/red]"
    return f"{status}: {check['value']:.4g} (must be {'>=' if check.get('at_least') else '<='} {check['limit']:.4g})"


def escalation_lines(escalation: dict[str, Any] | None, verdict: str | None) -> list[str]:
    """What the checks found and what the evaluation changed because of it."""
    if not escalation or not escalation.get("failed"):
        return []
    lines = [f"checks failed: {', '.join(escalation['failed'])}; evaluation {verdict}"]
    lines += [f"  adapted: {change}" for change in escalation.get("changes") or []]
    return lines


def epoch_line(log: EpochLog) -> str:
    """One training epoch's log line."""
    robust = (
        f"  val robust acc {100 * log.val_robust_acc:.2f}%"
        if log.val_robust_acc is not None
        else ""
    )
    return (
        f"epoch {log.epoch}: loss {log.loss:.4f}  train acc {100 * log.train_acc:.2f}%  "
        f"test acc {100 * log.test_acc:.2f}%{robust}  ({log.seconds:.0f}s)"
    )


def certify_table(summary: CertifySummary, width: int | None = None) -> Table:
    """Certified accuracy at a few radii per sigma."""
    radii = REPORTED_RADII
    rows = []
    for sigma, curve in summary.curves.items():
        at = dict(zip(curve["radii"], curve["certified_accuracy"]))
        spread = curve.get("passes_per_image") or {}  # absent in summaries stored before it existed
        passes = f"{spread['median']:,} / {spread['max']:,}" if spread else "-"
        rows.append(
            [
                sigma,
                *[pct(at.get(r)) for r in radii],
                pct(curve["abstain"]),
                pct(curve["predict_accuracy"]),
                passes,
            ]
        )
    title = (
        f"{summary.model} on {summary.dataset}, n={summary.n}: certified accuracy % at L2 radius"
    )
    caption = (
        f"σ: the noise's scale; run {summary.run_id}, {summary.forward_passes:,} noisy forward "
        f"passes, {summary.forward_passes_per_second:,.0f}/s"
    )
    columns = [
        "σ",
        *[f"r={r:g}" for r in radii],
        "abstain %",
        "PREDICT acc %",
        "passes per image: median / max",
    ]
    return table(title, columns, rows, caption=caption, width=width)


def adaptation_line(adaptations: dict[str, dict[str, object]]) -> str:
    """What adaptive evaluation used, in one line (empty when nothing was adapted)."""
    parts = []
    for attack, used in adaptations.items():
        bits = [
            f"EOT {used['eot_draws']} draws" if used.get("eot_draws", 1) != 1 else "",
            "BPDA" if used.get("bpda") else "",
            "treated as random" if used.get("treated_as_random") else "",
            "log of outputs" if used.get("log_outputs") else "",
        ]
        if any(bits):
            parts.append(f"{attack}: {', '.join(b for b in bits if b)}")
    return ("adaptive: " + "; ".join(parts)) if parts else ""


def warnings(messages: Iterable[str]) -> None:
    for message in messages:
        err_console.print(f"[yellow]warning:[/yellow] {escape(message)}")


def cell_line(i: int, total: int, label: str) -> None:
    """One line per suite cell as it starts."""
    err_console.print(f"\\[{i + 1}/{total}] {escape(label)}")


def suite_table(name: str, results: Iterable[CellResult]) -> Table:
    rows = [
        [r.kind, r.model, r.setting, r.run_id, "stored" if r.skipped else "done"] for r in results
    ]
    return table(f"suite {name}", ["kind", "model", "setting", "run", "status"], rows)


def curves_table(curves: Sequence[Curve]) -> Table:
    eps = curves[0].eps if curves else []
    return table(
        "robust accuracy % vs eps",
        ["curve", *[f"{e:g}" for e in eps]],
        [[c.label, *[pct(a) for a in c.accuracy]] for c in curves],
    )


def status_text(c: Comparison) -> str:
    """ok, REGRESSED or UNRELIABLE, with the current run's verdict beside it."""
    if c.unreliable:
        return "[red]UNRELIABLE[/red]"
    status = "[red]REGRESSED[/red]" if c.regressed else "ok"
    return status + (f" ({verdict_text(c.verdict)})" if c.verdict else "")


def drop_text(c: Comparison) -> str:
    """The drop in points, and the z-test's p under it where `--stat` asked for it."""
    drop = "-" if c.drop_points is None else f"{c.drop_points:+.2f}"
    return drop + ("" if c.p_value is None else f"\np={c.p_value:.2g}")


def attack_words(spec: str) -> str:
    """An attack spec that can wrap before its options and after each comma:
    'pgd:steps=20,restarts=2' -> 'pgd: steps=20, restarts=2' ('check:pgd' stays whole)."""
    equals = spec.find("=")
    colon = spec.rfind(":", 0, equals) if equals > 0 else -1
    if colon < 0:
        return spec
    return spec[: colon + 1] + " " + spec[colon + 1 :].replace(",", ", ")


def regression_table(results: Iterable[Comparison], title: str, width: int | None = None) -> Table:
    """One row per baseline entry: the baseline, the stored accuracy now, the drop in points (the
    dataset said once, under the table, where every entry has the same)."""
    results = list(results)
    datasets = {c.entry.dataset for c in results}
    one = datasets.pop() if len(datasets) == 1 else None
    rows = [
        [
            escape(c.entry.model),
            escape(("" if one else f"{c.entry.dataset} ") + f"{c.entry.norm} {c.entry.eps:g}"),
            escape(attack_words(c.entry.attack)),
            pct(c.entry.accuracy),
            pct(c.current),
            drop_text(c),
            status_text(c),
        ]
        for c in results
    ]
    columns = [
        Col("model", wrap=False),
        Col("threat"),
        Col("attack"),
        Col("was %", wrap=False, justify="right"),
        Col("now %", wrap=False, justify="right"),
        Col("drop", justify="right"),
        Col("status"),
    ]
    caption = (f"all on {escape(one)}; " if one else "") + "drop: baseline minus now, in points"
    return table(title, columns, rows, caption=caption, width=width)


def run_info_table(record: RunRecord, width: int | None = None) -> Table:
    """A stored run's provenance, adaptations and masking checks, one field per row (field names
    short enough that a sha256 fits beside them in 80 columns)."""
    plain = [  # (field, text): escaped, a '[' in a warning is not markup
        ("status", record.status),
        ("created", record.created),
        ("finished", record.finished),
        ("model", record.model),
        ("weights sha256", record.checkpoint_sha256),
        ("dataset", f"{record.dataset} (indices {record.indices_hash})"),
        ("seed", record.seed),
        ("device", record.device),
        ("wall seconds", f"{record.wall_seconds:.1f}"),
        ("advbench", record.package_version),
        ("git commit", record.git_commit),
        ("libraries", ", ".join(f"{k} {v}" for k, v in record.libraries.items())),
        ("attacks", json.dumps(record.config.get("attacks"))),
        ("adaptive", json.dumps(record.config.get("adaptations"))),
        ("masking checks", json.dumps((record.summary or {}).get("checks"))),
    ]
    checks = [  # (field, rich markup)
        ("verdict", verdict_text(record.config.get("verdict"))),
        *[
            ("check", f"{escape(c['name'])}: {check_text(c)}")
            for c in record.config.get("check_results") or []
        ],
        *[
            ("recheck", f"{escape(c['name'].removeprefix('recheck:'))}: {check_text(c)}")
            for c in record.config.get("rechecks") or []
        ],
    ]
    notes = [
        *[("adapted", c) for c in (record.config.get("escalation") or {}).get("changes") or []],
        *[("warning", w) for w in record.warnings],
    ]
    rows = [
        *[(f, escape(str(v))) for f, v in plain],
        *checks,
        *[(f, escape(str(v))) for f, v in notes],
    ]
    return table(f"run {record.run_id}", [Col("field"), Col("value")], rows, width=width)
