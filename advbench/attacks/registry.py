"""The attack registry and `name:key=value,...` specs mapped onto typed configs."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable

from advbench.attacks.base import Attack
from advbench.core.errors import UsageError
from advbench.core.registry import Registry


@dataclass(frozen=True)
class AttackSpec:
    name: str
    cls: type[Attack]
    config: type  # frozen dataclass of the attack's options
    family: str
    description: str
    norms: tuple[str, ...]
    defaults: dict[str, Any]


ATTACKS: Registry[AttackSpec] = Registry("attack")


def register_attack(name: str, *, config: type, family: str, description: str, **defaults: Any) -> Callable[[type[Attack]], type[Attack]]:
    """Register an attack class under `name`, with preset config values (e.g. fgsm = 1-step pgd)."""

    def wrap(cls: type[Attack]) -> type[Attack]:
        ATTACKS.add(name, AttackSpec(name, cls, config, family, description, cls.norms, defaults))
        return cls

    return wrap


def _convert(value: str, annotation: Any, key: str, attack: str) -> Any:
    kind = annotation if isinstance(annotation, type) else typing.get_args(annotation)[0] if typing.get_args(annotation) else str
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return kind(value)
    except ValueError:
        raise UsageError(f"attack {attack}: option {key}={value!r} is not a valid {kind.__name__}") from None


def parse_attack_spec(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition(":")
    options: dict[str, str] = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"attack option {part!r} in {text!r} must look like key=value")
        options[key.strip().replace("-", "_")] = value.strip()
    return name.strip(), options


def attack_label(text: str) -> str:
    """Canonical label of a spec: `pgd` stays `pgd`, options are sorted (`pgd:restarts=2,steps=50`)."""
    if text.strip().startswith("transfer:"):
        return "transfer:" + attack_label(text.strip().partition(":")[2])
    name, options = parse_attack_spec(text)
    return name if not options else f"{name}:{','.join(f'{k}={v}' for k, v in sorted(options.items()))}"


def build_attack(text: str, surrogate: str | None = None) -> tuple[str, Attack, dict[str, Any]]:
    """`pgd:steps=50,restarts=2` -> (label, attack instance, resolved config as a dict).

    `transfer:SPEC` runs the attack SPEC on the `surrogate` model and judges on the target.
    """
    if text.strip().startswith("transfer"):
        from advbench.attacks.transfer import Transfer, TransferConfig

        inner_text = text.strip().partition(":")[2]
        if not inner_text:
            raise UsageError("write a transfer attack as transfer:ATTACK, e.g. transfer:pgd:steps=50")
        if not surrogate:
            raise UsageError(f"{text!r} needs a surrogate model: pass --surrogate MODEL")
        inner_label, inner, inner_config = build_attack(inner_text)
        config = TransferConfig(inner_label, surrogate)
        return f"transfer:{inner_label}", Transfer(config, inner), {"inner": inner_label, "inner_config": inner_config, "surrogate": surrogate}
    name, options = parse_attack_spec(text)
    spec = ATTACKS.get(name)
    hints = typing.get_type_hints(spec.config)
    unknown = sorted(set(options) - set(hints))
    if unknown:
        raise UsageError(f"attack {name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(hints)}")
    values = {**spec.defaults, **{k: _convert(v, hints[k], k, name) for k, v in options.items()}}
    config = spec.config(**values)
    return attack_label(text), spec.cls(config), dataclasses.asdict(config)
