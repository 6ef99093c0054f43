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
MODEL_REWARDS = ("likelihood",)  # load a model, so imported only when asked for


def registered(name: str) -> type | None:
    """The reward class registered under `name`, or None."""
    if name == "likelihood":
        from .likelihood import Likelihood

        return Likelihood
    return REWARDS.get(name)

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
    from transformers import PreTrainedModel

    from .model import RewardModel, looks_like_model

    if isinstance(spec, PreTrainedModel):
        return RewardModel(spec)
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
    if (reward_class := registered(name)) is not None:
        try:
            return reward_class(**options)
        except TypeError as err:
            raise ValueError(f"Bad options {options} for reward '{name}': {err}") from None
    if looks_like_model(name):  # a registry name first, then a reward model's path or hub id
        return RewardModel(name, **options)
    if "." in name:
        obj = _import(name)
        return obj(**options) if options else obj
    raise ValueError(
        f"Unknown reward {name!r}. Known rewards: {', '.join(sorted([*REWARDS, *MODEL_REWARDS]))}; or give a "
        "dotted import path such as 'my_package.my_module.my_reward', or a sequence-classification reward model "
        "(local folder or hub id)."
    )


def resolve_rewards(specs: RewardSpec | list[RewardSpec] | None, required: bool = False,
                    processing_classes: Any = None) -> list[Callable]:
    """Resolve every reward spec; `processing_classes` (GRPO's `reward_processing_classes`) gives a tokenizer per
    reward, used by reward models and ignored (None) for the others."""
    if specs is None or specs == []:
        if required:
            raise ValueError(
                "ActiveInheritanceTrainer needs at least one reward: pass reward_funcs=, e.g. reward_funcs=['mtld'] "
                "or a callable f(prompts, completions, **kwargs) -> list[float]."
            )
        return []
    if not isinstance(specs, (list, tuple)):
        specs = [specs]
    if processing_classes is None:
        return [resolve_reward(s) for s in specs]
    if not isinstance(processing_classes, (list, tuple)):
        processing_classes = [processing_classes]
    if len(processing_classes) != len(specs):
        raise ValueError(
            f"Got {len(processing_classes)} reward_processing_classes for {len(specs)} reward_funcs; give one per "
            "reward, None for rewards that are not models."
        )
    from .model import RewardModel

    out = []
    for spec, tok in zip(specs, processing_classes):
        if tok is not None and isinstance(spec, (str, dict)):
            options = dict(spec) if isinstance(spec, dict) else {"name": spec}
            name = options.pop("name", None)
            if name in REWARDS:
                raise ValueError(f"reward_processing_classes gives a tokenizer for '{name}', which is not a "
                                 "reward model; put None in its place.")
            spec = registered(name)(tokenizer=tok, **options) if name in MODEL_REWARDS \
                else RewardModel(name, tokenizer=tok, **options)
        elif tok is not None and not isinstance(spec, RewardModel):
            from transformers import PreTrainedModel

            if not isinstance(spec, PreTrainedModel):
                raise ValueError(f"reward_processing_classes gives a tokenizer for {spec!r}, which is not a reward "
                                 "model; put None in its place.")
            spec = RewardModel(spec, tokenizer=tok)
        out.append(resolve_reward(spec))
    return out


def reward_name(func: Callable) -> str:
    return getattr(func, "__name__", None) or getattr(func, "name", None) or type(func).__name__
