"""`advbench.evaluate` and `advbench.certify`: one call on a model object and tensors.

Each builds a plan from the objects (`EvalPlan.from_objects`, `CertifyPlan.from_objects`) and runs
it on the engine the CLI uses, so the numbers are the CLI's for the same model and images. The
run goes to a throw-away database unless `db` names one; with `db`, an identical call is found
again and an interrupted one resumes. What comes back is data: the summary, the verdict, and
every sample's result as tensors in the order of `x`.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from advbench.attacks.base import Attack
from advbench.attacks.checks import CheckResult
from advbench.core.errors import UsageError
from advbench.core.threat import ThreatModel, parse_threat
from advbench.engine.certify import DEFAULT_NOISE_BATCH, CertifyPlan, certify_plan
from advbench.engine.evaluate import evaluate_plan
from advbench.engine.plan import EvalPlan
from advbench.engine.runs import ProgressFn
from advbench.engine.spec import Runtime
from advbench.store import CertifySummary, RunSummary, Store

Threats = str | ThreatModel | Sequence[str | ThreatModel]
Attacks = str | Attack | Sequence[str | Attack]


@dataclass
class Evaluation:
    """What `advbench.evaluate` returns. Sample `i` is `x[i]`; column `j` is `eps[j]`."""

    summary: RunSummary
    verdict: str | None  # reliable | escalated | unreliable; None with checks=False
    checks: list[CheckResult]
    eps: list[float]
    clean_correct: torch.Tensor  # bool [N]: the clean prediction is the label
    robust: torch.Tensor  # bool [N, len(eps)]: correct and unbroken by every attack (and every check's probe) at that eps
    rows: list[
        dict[str, Any]
    ]  # the stored rows, one per (sample, attack, eps): status, adv_pred, success, distance, ...
    adaptations: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # per attack: EOT draws, BPDA, ...
    escalation: dict[str, Any] | None = (
        None  # what the checks found and what the evaluation changed
    )

    @property
    def clean_accuracy(self) -> float:
        """Share of the images the model classifies correctly without an attack."""
        return self.summary.clean_accuracy

    @property
    def robust_accuracy(self) -> dict[float, float]:
        """Worst-case robust accuracy per eps."""
        return {e.eps: e.worst_case for e in self.summary.per_eps}

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "escalation": self.escalation,
            "adaptations": self.adaptations,
            "clean_correct": self.clean_correct.tolist(),
            "robust": self.robust.tolist(),
        }


@dataclass
class Certification:
    """What `advbench.certify` returns. Sample `i` is `x[i]`; column `j` is `sigmas[j]`."""

    summary: CertifySummary
    sigmas: list[float]
    labels: torch.Tensor  # int [N]
    prediction: torch.Tensor  # int [N, len(sigmas)]: CERTIFY's class, -1 where it abstained
    radius: (
        torch.Tensor
    )  # float [N, len(sigmas)]: the certified L2 radius of that prediction (0 when abstaining)
    predict: torch.Tensor  # int [N, len(sigmas)]: PREDICT's class, -1 where it abstained
    rows: list[dict[str, Any]]  # the stored certificates, one per (sample, sigma)

    def certified(self, radius: float) -> torch.Tensor:
        """bool [N, len(sigmas)]: certified correct at L2 radius `radius` or more."""
        return (self.prediction == self.labels.view(-1, 1)) & (self.radius >= radius)

    def certified_accuracy(self, radius: float) -> dict[float, float]:
        """Per sigma, the share of samples certified correct at `radius` (Cohen et al.'s approximate certified accuracy)."""
        shares = self.certified(radius).float().mean(0).tolist()
        return dict(zip(self.sigmas, shares))

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary.to_dict(),
            "prediction": self.prediction.tolist(),
            "radius": self.radius.tolist(),
            "predict": self.predict.tolist(),
        }


def threats_of(threat: Threats) -> tuple[str, tuple[float, ...]]:
    """'linf:0.1', a ThreatModel, or a list of them with one norm -> (norm, eps values)."""
    items = [threat] if isinstance(threat, (str, ThreatModel)) else list(threat)
    if not items:
        raise UsageError("give at least one threat, e.g. threat='linf:0.1'")
    parsed = []
    for item in items:
        if isinstance(item, str):
            item = parse_threat(item)
        if not isinstance(item, ThreatModel):
            raise UsageError(
                f"give a threat as 'NORM:EPS' (e.g. 'linf:0.1') or an advbench ThreatModel, got {type(item).__name__}"
            )
        if item.targeted:
            raise UsageError(
                f"threat {item.label()} is targeted; evaluations are untargeted (targeted attacks are attack options)"
            )
        parsed.append(item)
    norms = sorted({t.norm.value for t in parsed})
    if len(norms) > 1:
        raise UsageError(
            f"one norm per evaluation, got {', '.join(norms)}; call evaluate once per norm"
        )
    return norms[0], tuple(t.eps for t in parsed)


@contextmanager
def _database(db: str | Path | None) -> Iterator[Path]:
    """`db`, or a database that lives only for this call."""
    if db is not None:
        yield Path(db)
        return
    with tempfile.TemporaryDirectory(prefix="advbench-") as folder:
        yield Path(folder) / "runs.sqlite"


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: Threats,
    attack: Attacks = "auto",
    *,
    checks: bool = True,
    check_n: int = 100,
    seed: int = 0,
    eot: int | None = None,
    bpda: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    num_classes: int | None = None,
    name: str | None = None,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    db: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> Evaluation:
    """Robust accuracy of `model` on images `x` in [0,1] (N x C x H x W) with labels `y`.

    `threat`: 'linf:0.1', a `ThreatModel`, or a list of them with one norm (one robust accuracy
    per eps). `attack`: a spec ('auto', 'pgd:steps=50') or an `Attack`, or a list run in order,
    each on what the earlier ones left. With `checks` (the default) the gradient-masking checks
    run first on `check_n` samples, adapt the evaluation and give the verdict. A bare
    `nn.Module` takes [0,1] inputs unless `mean`/`std` are given.
    """
    norm, eps = threats_of(threat)
    plan = EvalPlan.from_objects(
        model,
        x,
        y,
        attacks=attack,
        eps=eps,
        norm=norm,
        seed=seed,
        name=name,
        num_classes=num_classes,
        mean=mean,
        std=std,
        checks=checks,
        check_n=check_n,
        eot=eot,
        bpda=bpda,
        device=device,
    )
    with _database(db) as path:
        outcome = evaluate_plan(plan, Runtime(db=path, batch_size=batch_size), progress)
        with Store(path) as store:
            clean = store.clean_rows(outcome.summary.run_id)
            rows = store.sample_rows(outcome.summary.run_id)
    position = {int(i): p for p, i in enumerate(plan.indices.tolist())}
    clean_correct = torch.zeros(len(position), dtype=torch.bool)
    for idx, label, pred in clean:
        clean_correct[position[idx]] = label == pred
    eps_list = [t.eps for t in plan.threats]
    column = {e: j for j, e in enumerate(eps_list)}
    broken = torch.zeros(len(position), len(eps_list), dtype=torch.bool)
    for (
        row
    ) in rows:  # misclassified samples are not robust anyway: only attacks that succeeded break one
        if row["status"] == "attacked" and row["success"] and row["eps"] in column:
            broken[position[row["sample_idx"]], column[row["eps"]]] = True
    robust = clean_correct.view(-1, 1) & ~broken
    return Evaluation(
        outcome.summary,
        outcome.verdict,
        outcome.checks,
        eps_list,
        clean_correct,
        robust,
        rows,
        outcome.adaptations,
        outcome.escalation,
    )


def certify(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    sigma: float | Sequence[float] = 0.25,
    *,
    n0: int = 100,
    noise_draws: int = 100_000,
    alpha: float = 0.001,
    adaptive_radius: float | None = None,
    seed: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    num_classes: int | None = None,
    name: str | None = None,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    db: str | Path | None = None,
    progress: ProgressFn | None = None,
    sequential: bool = False,
    radii: Sequence[float] = (),
    resolution: float = 0.01,
    precision: str = "fp32",
) -> Certification:
    """Cohen et al.'s certified L2 radii of the Gaussian-smoothed `model` on images `x` in [0,1]
    with labels `y`, per sample and noise level `sigma` (one or a list).

    Per image and sigma: `n0` noise draws pick the class, `noise_draws` bound its probability at
    failure rate `alpha`; `adaptive_radius` stops sampling an image once its decision at that
    radius is settled. `sequential`: each image stops once its answer at every radius of `radii`
    (empty: its whole curve, to `resolution` in L2) is settled, `noise_draws` its cap, with
    bounds valid at `alpha` over all looks. `precision`: fp32, or bf16/fp16 autocast.
    `batch_size`: noisy copies per forward pass (default 1000).
    """
    sigmas = (sigma,) if isinstance(sigma, (int, float)) else tuple(sigma)
    plan = CertifyPlan.from_objects(
        model,
        x,
        y,
        sigmas=sigmas,
        n0=n0,
        noise_draws=noise_draws,
        alpha=alpha,
        seed=seed,
        adaptive_radius=adaptive_radius,
        name=name,
        num_classes=num_classes,
        mean=mean,
        std=std,
        device=device,
        sequential=sequential,
        radii=radii,
        resolution=resolution,
        precision=precision,
        batch_size=batch_size or DEFAULT_NOISE_BATCH,
    )
    with _database(db) as path:
        summary = certify_plan(plan, Runtime(db=path), progress)
        with Store(path) as store:
            rows = store.certificate_rows(summary.run_id)
    position = {int(i): p for p, i in enumerate(plan.indices.tolist())}
    column = {c.sigma: j for j, c in enumerate(plan.settings)}
    shape = (len(position), len(column))
    prediction, predict = (
        torch.full(shape, -1, dtype=torch.int64),
        torch.full(shape, -1, dtype=torch.int64),
    )
    radius = torch.zeros(shape)
    for row in rows:
        at = (position[row["sample_idx"]], column[row["sigma"]])
        prediction[at], predict[at], radius[at] = row["prediction"], row["predict"], row["radius"]
    labels = torch.as_tensor(y).detach().cpu().to(torch.int64)
    return Certification(
        summary, [c.sigma for c in plan.settings], labels, prediction, radius, predict, rows
    )
