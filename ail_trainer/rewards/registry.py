"""Resolve reward specs (names with options, dotted import paths, callables) for YAML and the command line."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from typing import Any

from .length import Length
from .lexical import HDD, MATTR, MTLD
from .toxicity import LowToxicity, Toxicity

REWARDS: dict[str, type] = {
    "mtld": MTLD,
    "mattr": MATTR,
    "hdd": HDD,
    "length": Length,
    "toxicity": Toxicity,
    "low_toxicity": LowToxicity,
}

RewardSpec = str | dict | Callable


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {"true": True, "false": False, "none": None, "null": None}.get(text.lower(), text)


def parse_reward_string(spec: str) -> tuple[str, dict[str, Any]]:
    """Split `'name:key=value,key=value'` (the command-line form) into a name and options."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"Reward option {item!r} in {spec!r} is not of the form key=value.")
        options[key.strip()] = _parse_value(value.strip())
    return name.strip(), options


def _import(path: str) -> Any:
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"Could not import the reward {path!r}: {err}") from err
    if not hasattr(module, attr):
        raise ValueError(f"Could not import the reward {path!r}: module {module_name!r} has no attribute {attr!r}.")
    return getattr(module, attr)


def resolve_reward(spec: RewardSpec) -> Callable:
    """Turn one reward spec into a callable reward.

    A spec is a callable, a registered name (`"mtld"`), a name with options (`"length:unit=words"` or
    `{"name": "low_toxicity", "backend": "profanity"}`), or a dotted path (`"my_pkg.rewards.my_reward"`).
    Options given with a dotted path are passed to the imported factory.
    """
    if callable(spec):
        return spec
    if isinstance(spec, dict):
        options = dict(spec)
        if "name" not in options:
            raise ValueError(f"A reward given as a mapping needs a 'name' key, got {spec!r}.")
        name = options.pop("name")
    elif isinstance(spec, str):
        name, options = parse_reward_string(spec)
    else:
        raise TypeError(f"A reward must be a name, a mapping or a callable, got {type(spec).__name__}: {spec!r}.")
    if name in REWARDS:
        try:
            return REWARDS[name](**options)
        except TypeError as err:
            raise ValueError(f"Bad options {options} for reward '{name}': {err}") from None
    if "." in name:
        obj = _import(name)
        return obj(**options) if options else obj
    raise ValueError(
        f"Unknown reward {name!r}. Known rewards: {', '.join(sorted(REWARDS))}; "
        "or give a dotted import path such as 'my_package.my_module.my_reward'."
    )


def resolve_rewards(specs: RewardSpec | list[RewardSpec] | None, required: bool = False) -> list[Callable]:
    if specs is None or specs == []:
        if required:
            raise ValueError(
                "ActiveInheritanceTrainer needs at least one reward: pass reward_funcs=, e.g. reward_funcs=['mtld'] "
                "or a callable f(prompts, completions, **kwargs) -> list[float]."
            )
        return []
    if not isinstance(specs, (list, tuple)):
        specs = [specs]
    return [resolve_reward(s) for s in specs]


def reward_name(func: Callable) -> str:
    return getattr(func, "__name__", None) or getattr(func, "name", None) or type(func).__name__
