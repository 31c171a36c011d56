"""What each listing command shows (`runs`, `models`, `models --cost`, `attacks`, `recipes`,
`train --options`): its columns and their kinds, as `listing.Listing`s."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from advbench.cli.listing import Column, Listing
from advbench.store.sqlite import RunRecord

if TYPE_CHECKING:  # its module loads torch, this one must not
    from advbench.analysis.cost import ModelCost


def runs_listing(runs: list[RunRecord]) -> Listing:
    """`advbench runs`: one record per stored run, newest first."""
    records = [
        {
            "run_id": r.run_id,
            "kind": r.kind,
            "status": r.status,
            "created": r.created,
            "model": r.model,
            "dataset": r.dataset,
            "n": r.n_samples,
            "attacks": r.config.get("attack_names", []),
            "norm": r.config.get("norm"),
            "eps": r.config.get("eps", []),
            "sigmas": r.config.get("sigmas", []),
            "seconds": round(r.wall_seconds, 1),
        }
        for r in runs
    ]
    columns = [
        Column("run", "run_id", keep=True),
        Column("kind", "kind"),
        Column("status", "status"),
        Column("created", "created"),
        Column("model", "model", keep=True),
        Column("dataset", "dataset"),
        Column("n", "n"),
        Column("attacks", "attacks", "list"),
        Column("norm", "norm"),
        Column("eps", "eps", "list"),
        Column("seconds", "seconds"),
    ]
    return Listing(
        "runs",
        columns,
        records,
        "run_id",
        drop=("created", "seconds", "kind", "norm", "dataset", "eps", "attacks", "status", "n"),
    )


def models_listing(records: list[dict[str, Any]]) -> Listing:
    columns = [
        Column("name", "name", keep=True),
        Column("family", "family"),
        Column("paper, section", "paper", "text"),
        Column("recipe", "recipe"),
        Column("checkpoints", "checkpoints", "list"),
        Column("description", "description", "text"),
    ]
    return Listing(
        "models",
        columns,
        records,
        "name",
        drop=("paper", "recipe", "family", "description", "checkpoints"),
    )


def attacks_listing(records: list[dict[str, Any]]) -> Listing:
    columns = [
        Column("name", "name", keep=True),
        Column("family", "family"),
        Column("threat models", "norms", "list"),
        Column("defaults", "defaults", "list"),
        Column("description", "description", "text"),
    ]
    return Listing(
        "attacks", columns, records, "name", drop=("defaults", "family", "description", "norms")
    )


def recipes_listing(records: list[dict[str, Any]]) -> Listing:
    columns = [
        Column("recipe", "name", keep=True),
        Column("adversarial", "adversarial", show=lambda v: "yes" if v else ""),
        Column("what it minimizes", "minimizes", "text"),
    ]
    return Listing("training recipes", columns, records, "name", drop=("adversarial",))


def options_listing(records: list[dict[str, Any]]) -> Listing:
    columns = [
        Column("option", "option", keep=True),
        Column("type", "type", "list"),
        Column("default", "default", "list"),
    ]
    return Listing("training options (--set KEY=VALUE)", columns, records, "option")


def cost_listing(
    rows: Iterable[tuple[str, tuple[int, ...] | None, ModelCost | None, str]],
) -> Listing:
    """`models --cost`: one record per model (name, input shape, its cost or None, note)."""
    records = [
        {
            "name": name,
            "input": list(shape) if shape else None,
            **(
                {"params": None, "flops": None, "activation_bytes": None, "receptive_field": None}
                if c is None
                else {
                    "params": c.params,
                    "flops": c.flops,
                    "activation_bytes": c.activation_bytes,
                    "receptive_field": c.receptive_field,
                }
            ),
            "note": error,
        }
        for name, shape, c, error in rows
    ]

    def scaled(divisor: float, digits: int) -> Callable[[float | None], str]:
        return lambda v: "-" if v is None else f"{v / divisor:.{digits}f}"

    columns = [
        Column("name", "name", keep=True),
        Column("input", "input", show=lambda v: "x".join(map(str, v)) if v else "-"),
        Column("params (M)", "params", show=scaled(1e6, 2)),
        Column("MFLOPs", "flops", show=scaled(1e6, 1)),
        Column("activations (MiB)", "activation_bytes", show=scaled(2**20, 2)),
        Column(
            "receptive field (px)", "receptive_field", show=lambda v: "-" if v is None else f"{v:g}"
        ),
        Column("note", "note", "text"),
    ]
    return Listing(
        "model cost of one image, default build (stride paper Figs. 6-7)",
        columns,
        records,
        "name",
        drop=("note", "activation_bytes", "flops", "receptive_field", "params", "input"),
    )
