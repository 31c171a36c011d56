"""Rich rendering of library results (tables on stdout)."""

from __future__ import annotations

from typing import Iterable, Sequence

from rich.console import Console
from rich.table import Table

from advbench.store.sqlite import RunRecord
from advbench.store.summary import RunSummary

console = Console()
err_console = Console(stderr=True)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]], caption: str | None = None) -> Table:
    t = Table(title=title, caption=caption, header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(str(c) for c in row))
    return t


def summary_table(summary: RunSummary) -> Table:
    title = f"{summary.model} on {summary.dataset}, n={summary.n}, {summary.norm}"
    columns = ["eps", "clean %", *[f"after {a} %" for a in summary.attacks], "worst case %"]
    rows = [
        [f"{e.eps:g}", pct(summary.clean_accuracy), *[pct(e.robust_after[a]) for a in summary.attacks], f"[bold]{pct(e.worst_case)}[/bold]"]
        for e in summary.per_eps
    ]
    return table(title, columns, rows, caption=f"run {summary.run_id} ({summary.wall_seconds:.1f} s)")


def runs_table(runs: list[RunRecord]) -> Table:
    rows = [
        [
            r.run_id, r.status, r.created, r.model, r.dataset, r.n_samples,
            ",".join(r.config.get("attack_names", [])), r.config.get("norm", ""),
            ",".join(f"{e:g}" for e in r.config.get("eps", [])), f"{r.wall_seconds:.1f}",
        ]
        for r in runs
    ]
    return table("runs", ["run", "status", "created", "model", "dataset", "n", "attacks", "norm", "eps", "seconds"], rows)


def epoch_line(log: object) -> str:
    """One training epoch's log line."""
    robust = f"  val robust acc {100 * log.val_robust_acc:.2f}%" if getattr(log, "val_robust_acc", None) is not None else ""  # type: ignore[attr-defined]
    return (
        f"epoch {log.epoch}: loss {log.loss:.4f}  train acc {100 * log.train_acc:.2f}%  "  # type: ignore[attr-defined]
        f"test acc {100 * log.test_acc:.2f}%{robust}  ({log.seconds:.0f}s)"  # type: ignore[attr-defined]
    )


def certify_table(summary: object) -> Table:
    """Certified accuracy at a few radii per sigma."""
    radii = [0.0, 0.25, 0.5, 0.75, 1.0]
    rows = []
    for sigma, curve in summary.curves.items():  # type: ignore[attr-defined]
        at = dict(zip(curve["radii"], curve["certified_accuracy"]))
        rows.append([sigma, *[pct(at.get(r)) for r in radii], pct(curve["abstain"]), pct(curve["predict_accuracy"])])
    title = f"{summary.model} on {summary.dataset}, n={summary.n}: certified accuracy % at L2 radius"  # type: ignore[attr-defined]
    caption = f"run {summary.run_id}, {summary.forward_passes} noisy forward passes, {summary.forward_passes_per_second:.0f}/s"  # type: ignore[attr-defined]
    return table(title, ["sigma", *[f"r={r:g}" for r in radii], "abstain %", "PREDICT acc %"], rows, caption=caption)


def adaptation_line(adaptations: dict[str, dict[str, object]]) -> str:
    """What adaptive evaluation used, in one line (empty when nothing was adapted)."""
    parts = []
    for attack, used in adaptations.items():
        bits = [f"EOT {used['eot_draws']} draws" if used.get("eot_draws", 1) != 1 else "", "BPDA" if used.get("bpda") else ""]
        if any(bits):
            parts.append(f"{attack}: {', '.join(b for b in bits if b)}")
    return ("adaptive: " + "; ".join(parts)) if parts else ""
