"""The demo's figures, written from its stored run: docs/demo-results.md and the README's block.

`make demo` (scripts/demo.sh) runs the suite docs/suites/demo.yaml into results/demo/demo.sqlite
and calls this script, which writes results/demo/demo-results.md. With DEMO_PUBLISH=1 the demo
also stores its database as docs/runs/demo.sqlite.gz and this script rewrites docs/demo-results.md
and the README's figures (between `<!-- demo-figures -->` and `<!-- end:demo-figures -->`), so no
figure the README quotes is typed by hand; tests/test_demo_results.py rebuilds both from the
stored database and fails if they differ.

Run: python scripts/demo_results.py --db results/demo/demo.sqlite [--out docs/demo-results.md] [--readme README.md]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from advbench.report.intervals import wilson
from advbench.store import Store
from advbench.store.summary import summarize

REPO = Path(__file__).resolve().parents[1]
BEGIN = "<!-- demo-figures -->"
END = "<!-- end:demo-figures -->"
ORDER = ("cnn3", "kap-cnn3", "madry-cnn-at")  # docs/suites/demo.yaml's models, as the README names them


@dataclass(frozen=True)
class DemoRun:
    """One model's evaluation in the demo database."""

    run_id: str
    model: str
    n: int
    norm: str
    clean: float
    eps: tuple[float, ...]
    worst: tuple[float, ...]  # worst case per eps, every attack that ran (the checks' probes too)
    verdict: str | None
    seconds: float
    commit: str
    device: str


def demo_runs(db: Path) -> list[DemoRun]:
    """Every finished evaluation in `db`, in the README's order of models."""
    runs = []
    with Store(db) as store:
        for record in store.list_runs(limit=1000):
            if record.kind != "eval" or record.status != "finished":
                continue
            summary = summarize(store, record.run_id)
            runs.append(
                DemoRun(
                    record.run_id,
                    record.model,
                    summary.n,
                    summary.norm,
                    summary.clean_accuracy,
                    tuple(e.eps for e in summary.per_eps),
                    tuple(e.worst_case for e in summary.per_eps),
                    summary.verdict,
                    record.wall_seconds,
                    record.git_commit or "",
                    record.device,
                )
            )
    rank = {m: i for i, m in enumerate(ORDER)}
    return sorted(runs, key=lambda r: (rank.get(r.model, len(rank)), r.model))


def pct(share: float) -> str:
    return f"{100 * share:.0f}"


def _slashes(values: tuple[float, ...]) -> str:
    return " / ".join(pct(v) for v in values)


def _eps(values: tuple[float, ...]) -> str:
    return " / ".join(f"{e:g}" for e in values)


def readme_block(runs: list[DemoRun]) -> str:
    """The README's demo figures, markers included."""
    eps = runs[0].eps
    robust = "; ".join(f"{r.model} {_slashes(r.worst)} %" for r in runs)
    clean = ", ".join(f"{r.model} {pct(r.clean)} %" for r in runs)
    verdicts = sorted({r.verdict or "no checks" for r in runs})
    verdict = f"every verdict `{verdicts[0]}`" if len(verdicts) == 1 else "verdicts " + ", ".join(f"{r.model} `{r.verdict}`" for r in runs)
    n = runs[0].n
    return (
        f"{BEGIN}\nRobust accuracy (the worst case per image over every attack that ran) at "
        f"{runs[0].norm.capitalize()} {_eps(eps)}: {robust}; clean accuracy {clean}; {verdict} "
        f"({n} images; 95 % intervals about +-{_half_width(n)} points at 50 %; "
        f"[docs/demo-results.md](docs/demo-results.md)).\n{END}"
    )


def _half_width(n: int) -> int:
    low, high = wilson(0.5, n)
    return round(100 * (high - low) / 2)


def page(runs: list[DemoRun]) -> str:
    """docs/demo-results.md."""
    eps = runs[0].eps
    norm = runs[0].norm.capitalize()
    commits = sorted({r.commit[:7] for r in runs})
    devices = sorted({r.device for r in runs})
    head = "| model | clean % | " + " | ".join(f"{norm} {e:g} % [95 % CI]" for e in eps) + " | verdict | run | wall s |"
    rule = "|---" * (5 + len(eps)) + "|"
    rows = []
    for r in runs:
        cells = [f"{pct(w)} [{pct(wilson(w, r.n)[0])}, {pct(wilson(w, r.n)[1])}]" for w in r.worst]
        rows.append(f"| {r.model} | {pct(r.clean)} | " + " | ".join(cells) + f" | {r.verdict or '-'} | `{r.run_id}` | {r.seconds:.0f} |")
    return "\n".join(
        [
            "# The demo's results",
            "",
            "What `make demo` measures: the suite `docs/suites/demo.yaml` (the default evaluation `auto`,",
            f"gradient-masking checks on all {runs[0].n} images, {runs[0].n} Fashion-MNIST test images, seed 0).",
            "Robust accuracy is the worst case per image over every attack that ran; brackets hold the",
            "Wilson 95 % interval. Written by `scripts/demo_results.py` from the demo's stored run,",
            "`docs/runs/demo.sqlite.gz` (`advbench runs --db` and `advbench show RUN_ID --db` read it once",
            f"unpacked), made at commit `{', '.join(commits)}` on {', '.join(devices)};",
            "`tests/test_demo_results.py` checks that this page and the README's figures are what that",
            "database gives.",
            "",
            head,
            rule,
            *rows,
            "",
            "Wall seconds are each evaluation's stored time, checks included, on the machine and under the",
            "load of the stored run ([performance](notes/performance.md#demo) has the demo's timing on idle cores).",
            "To re-make this page, the database and the README's figures: `DEMO_PUBLISH=1 make demo`.",
            "",
        ]
    )


def replace_block(text: str, block: str) -> str:
    """`text` with its demo-figures block replaced by `block`."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + block + text[end:]


def unpacked(db: Path) -> Path:
    """`db` itself, or a temporary copy of it unpacked when it is gzipped."""
    if db.suffix != ".gz":
        return db
    out = Path(tempfile.mkdtemp()) / db.stem
    with gzip.open(db, "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=REPO / "docs" / "runs" / "demo.sqlite.gz", help="the demo's database (.sqlite or .sqlite.gz)")
    parser.add_argument("--out", type=Path, help="write the results page here (e.g. docs/demo-results.md)")
    parser.add_argument("--readme", type=Path, help="rewrite this README's demo-figures block")
    args = parser.parse_args()
    runs = demo_runs(unpacked(args.db))
    if not runs:
        raise SystemExit(f"no finished evaluation in {args.db}")
    if args.out:
        args.out.write_text(page(runs))
        print(f"wrote {args.out}")
    if args.readme:
        args.readme.write_text(replace_block(args.readme.read_text(), readme_block(runs)))
        print(f"wrote the demo figures into {args.readme}")
    if not args.out and not args.readme:
        print(page(runs))


if __name__ == "__main__":
    main()
