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
    """A registered attack: its class, its frozen config type, the norms it supports and the
    preset option values its name stands for."""

    name: str
    cls: type[Attack]
    config: type  # frozen dataclass of the attack's options
    family: str
    description: str
    norms: tuple[str, ...]
    defaults: dict[str, Any]
    wraps: bool = False  # written NAME:INNER_SPEC; the class builds itself around the inner attack (`from_inner`)


ATTACKS: Registry[AttackSpec] = Registry("attack")


def register_attack(
    name: str,
    *,
    config: type,
    family: str,
    description: str,
    wraps: bool = False,
    norms: tuple[str, ...] | None = None,
    **defaults: Any,
) -> Callable[[type[Attack]], type[Attack]]:
    """Register an attack class under `name`, with preset config values (e.g. fgsm = 1-step pgd).

    `wraps`: the attack is written `name:INNER` and built by `cls.from_inner(label, attack, config, surrogate)`.
    """

    def wrap(cls: type[Attack]) -> type[Attack]:
        ATTACKS.add(
            name,
            AttackSpec(name, cls, config, family, description, norms or cls.norms, defaults, wraps),
        )
        return cls

    return wrap


def _convert(value: str, annotation: Any, key: str, attack: str) -> Any:
    kind = (
        annotation
        if isinstance(annotation, type)
        else typing.get_args(annotation)[0]
        if typing.get_args(annotation)
        else str
    )
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return kind(value)
    except ValueError:
        raise UsageError(
            f"attack {attack}: option {key}={value!r} is not a valid {kind.__name__}"
        ) from None


def parse_attack_spec(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition(":")
    options: dict[str, str] = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"attack option {part!r} in {text!r} must look like key=value")
        key = key.strip().replace("-", "_")
        if key in options:
            raise UsageError(
                f"attack option {key!r} is given twice in {text!r}; give each option once"
            )
        options[key] = value.strip()
    return name.strip(), options


def attack_label(text: str) -> str:
    """Canonical label of a spec: `pgd` stays `pgd`, options are sorted (`pgd:restarts=2,steps=50`)."""
    name, sep, rest = text.strip().partition(":")
    if name in ATTACKS and ATTACKS.get(name).wraps:
        return f"{name}:" + attack_label(rest)
    name, options = parse_attack_spec(text)
    return (
        name
        if not options
        else f"{name}:{','.join(f'{k}={v}' for k, v in sorted(options.items()))}"
    )


def keyed_unless_default(default: Any) -> Any:
    """A config field added after runs were stored: left out of the config's dict (and so of run
    keys) while it holds its default, so those runs keep their identity."""
    return dataclasses.field(default=default, metadata={"keyed": "unless_default"})


def config_dict(config: Any) -> dict[str, Any]:
    """An attack config as a dict: every field, but `keyed_unless_default` ones at their default."""
    values = dataclasses.asdict(config)
    for f in dataclasses.fields(config):
        if f.metadata.get("keyed") == "unless_default" and values[f.name] == f.default:
            del values[f.name]
    return values


def build_attack(text: str, surrogate: str | None = None) -> tuple[str, Attack, dict[str, Any]]:
    """`pgd:steps=50,restarts=2` -> (label, attack instance, resolved config as a dict).

    A wrapping attack (`transfer:SPEC`) builds the inner attack SPEC and itself around it.
    """
    head = text.strip().partition(":")[0].strip()
    if head in ATTACKS and ATTACKS.get(head).wraps:
        inner_text = text.strip().partition(":")[2]
        if not inner_text:
            raise UsageError(f"write {head} as {head}:ATTACK, e.g. {head}:pgd:steps=50")
        inner_label, inner, inner_config = build_attack(inner_text)
        return ATTACKS.get(head).cls.from_inner(inner_label, inner, inner_config, surrogate)  # type: ignore[attr-defined]
    name, options = parse_attack_spec(text)
    spec = ATTACKS.get(name)
    hints = typing.get_type_hints(spec.config)
    unknown = sorted(set(options) - set(hints))
    if unknown:
        raise UsageError(
            f"attack {name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(hints)}"
        )
    values = {**spec.defaults, **{k: _convert(v, hints[k], k, name) for k, v in options.items()}}
    config = spec.config(**values)
    return attack_label(text), spec.cls(config), config_dict(config)


def attack_identity(attack: Attack) -> tuple[str, dict[str, Any]]:
    """(label, config as a dict) of an attack object, as `build_attack` gives them for the spec
    that builds it: `PGD(PGDConfig(steps=50))` is labelled `pgd:steps=50`, so a run keyed by it is
    the run the spec asks for. An attack class outside the registry keeps its `name` and adds its
    class to the config (its key then names the class)."""
    if not isinstance(attack, Attack):
        raise UsageError(
            f"give an attack as a spec such as 'pgd:steps=50' or an advbench Attack, got {type(attack).__name__}"
        )
    config = getattr(attack, "config", None)
    values = (
        config_dict(config)
        if dataclasses.is_dataclass(config) and not isinstance(config, type)
        else {}
    )
    spec = ATTACKS.get(attack.name) if attack.name in ATTACKS else None
    if spec is None or type(attack) is not spec.cls:
        return attack.name, {
            **values,
            "class": f"{type(attack).__module__}.{type(attack).__qualname__}",
        }
    if spec.wraps:
        return attack.name, values
    defaults = config_dict(spec.config(**spec.defaults))
    changed = sorted(
        ((k, v) for k, v in values.items() if defaults.get(k) != v), key=lambda kv: kv[0]
    )
    return (
        f"{attack.name}:{','.join(f'{k}={v}' for k, v in changed)}" if changed else attack.name
    ), values
