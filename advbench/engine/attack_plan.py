"""The attacks of a plan: names and options validated, each attack with the model as it sees it
(EOT draws, BPDA, a transfer surrogate), and the attacks an escalation adds."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from advbench.attacks import build_attack
from advbench.attacks.base import Attack
from advbench.attacks.checks import Escalation
from advbench.attacks.registry import attack_identity
from advbench.attacks.transfer import Transfer
from advbench.attacks.wrappers import EOT_DRAWS_RANDOM_MODEL, AttackedModel, TransferModel, view_for
from advbench.core.errors import UsageError
from advbench.core.threat import ThreatModel
from advbench.models.wrapper import RobustModel


@dataclass(frozen=True)
class PlannedAttack:
    label: str
    attack: Attack
    config: dict[str, Any]
    view: AttackedModel  # the model as this attack sees it (EOT draws, BPDA, transfer surrogate)


def validate_attacks(
    names: tuple[str | Attack, ...], threats: Sequence[ThreatModel], surrogate: str | None
) -> list[tuple[str, Attack, dict[str, Any]]]:
    """Every attack name, option and norm checked before anything heavy is loaded (an `Attack`
    object is taken as is, labelled as the spec that builds it)."""
    built = [build_attack(a, surrogate) if isinstance(a, str) else _built_object(a) for a in names]
    labels = [b[0] for b in built]
    if len(set(labels)) != len(labels):
        raise UsageError("each attack (with its options) may appear once per run")
    norm = threats[0].norm.value
    for label, attack, _ in built:
        if norm not in attack.norms:
            raise UsageError(f"attack {label!r} does not support the {norm} norm")
    return built


def _built_object(attack: Attack) -> tuple[str, Attack, dict[str, Any]]:
    label, config = attack_identity(attack)
    return label, attack, config


def plan_attacks(
    names: tuple[str | Attack, ...],
    threats: Sequence[ThreatModel],
    model: RobustModel,
    surrogate: str | None,
    eot: int | None,
    bpda: bool,
    load_surrogate: Callable[[str], RobustModel] | None,
) -> list[PlannedAttack]:
    planned, surrogates = [], {}
    for label, attack, config in validate_attacks(names, threats, surrogate):
        if isinstance(attack, Transfer):
            if load_surrogate is None:
                raise UsageError(
                    "transfer attacks need a named surrogate model; evaluate by name (resolve) to use them"
                )
            name = attack.config.surrogate
            if name not in surrogates:
                surrogates[name] = load_surrogate(name)
            inner = view_for(surrogates[name], attack.inner.uses_gradients, eot, bpda)
            view: AttackedModel = TransferModel(model, inner, name)
        else:
            view = attack.view(model, eot, bpda)
        planned.append(PlannedAttack(label, attack, config, view))
    return planned


def escalated_attacks(
    asked: Sequence[PlannedAttack],
    esc: Escalation,
    model: RobustModel,
    threats: Sequence[ThreatModel],
    eot: int | None,
    bpda: bool,
    load_surrogate: Callable[[str], RobustModel] | None,
) -> tuple[PlannedAttack, ...]:
    """The `asked` attacks seen as `esc` says (random: EOT draws unless --eot forced them; log of
    probabilities), then `esc`'s attacks, each once."""

    def adapted(view: AttackedModel, uses_gradients: bool) -> AttackedModel:
        draws = view.eot_draws
        if esc.random and eot is None and uses_gradients:
            draws = max(draws, EOT_DRAWS_RANDOM_MODEL)
        return AttackedModel(
            view.model,
            draws,
            view.bpda,
            random=view.random or esc.random,
            log_outputs=view.log_outputs or esc.log_outputs,
        )

    out = [
        a
        if isinstance(a.view, TransferModel)
        else replace(a, view=adapted(a.view, a.attack.uses_gradients))
        for a in asked
    ]
    labels = {a.label for a in out}
    surrogate = None
    for label, attack, config in validate_attacks(
        tuple(a for a in esc.attacks if a not in labels), threats, esc.surrogate
    ):
        if isinstance(attack, Transfer):
            if load_surrogate is None:
                continue  # a plan from objects has no named surrogate to craft on
            # gradients come from the surrogate, which the checks did not examine
            surrogate = surrogate or load_surrogate(attack.config.surrogate)
            view: AttackedModel = TransferModel(
                model, view_for(surrogate, True, None, bpda), attack.config.surrogate
            )
        else:
            view = adapted(attack.view(model, eot, bpda), attack.uses_gradients)
        out.append(PlannedAttack(label, attack, config, view))
    return tuple(out)
