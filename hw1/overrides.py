"""`--set` items: Hydra's dotted grammar, `section.field=value`, typed and validated against a
scale's dataclasses (`hw1.config`); an unknown key lists the valid ones.

    apply_overrides(CI, ["fit.epochs=5000", "gen.seeds=12", "mnist.train_size=none"])
"""

from __future__ import annotations

import ast
import types
import typing
from dataclasses import fields, replace

from .config import BS_LR_SCALINGS, OPTIMIZERS, Scale

_CHOICES = {"optimizer": OPTIMIZERS, "bs_lr_scaling": tuple(BS_LR_SCALINGS)}  # fields with named values


class OverrideError(ValueError):
    """A --set item names no field, or its value does not fit the field's type."""


SECTIONS = ("fit", "mnist", "opt", "gen", "stages")
_TOP = ("alpha",)


def _valid_keys(scale: Scale) -> list[str]:
    keys = list(_TOP)
    for sec in SECTIONS:
        keys += [f"{sec}.{f.name}" for f in fields(getattr(scale, sec))]
    return keys


def _parse(text: str, hint, key: str):
    """text parsed to the type `hint` (int, float, bool, str, X | None, tuple[X, ...])."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse(text, inner[0], key)
    if origin is tuple:
        raw = text.strip()
        try:
            items = ast.literal_eval(raw if raw[:1] in "([" else f"({raw},)")
        except (ValueError, SyntaxError):  # bare words: sinc,sincos
            items = [w.strip().strip("'\"") for w in raw.strip("()[]").split(",") if w.strip()]
        if not isinstance(items, (tuple, list)):
            items = (items,)
        elem = args[0] if args else str
        if len(args) > 1 and args[1] is not Ellipsis and len(items) != len(args):
            raise OverrideError(f"--set {key}={text}: expected {len(args)} values")
        return tuple(_parse(str(v), elem, key) for v in items)
    if hint is bool:
        low = text.strip().lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise OverrideError(f"--set {key}={text}: expected true or false")
        return low in ("true", "1", "yes")
    try:
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
    except ValueError:
        raise OverrideError(f"--set {key}={text}: expected {hint.__name__}") from None
    return text


def apply_overrides(scale: Scale, items) -> Scale:
    """The scale with `section.field=value` items applied (Hydra's grammar), typed and validated.

    Unknown keys and values of the wrong type raise OverrideError listing what is valid.
    Example: apply_overrides(CI, ["fit.epochs=5000", "gen.seeds=12"]).
    """
    items = list(items)
    changes: dict[str, dict] = {}  # section -> {field: value}, applied together (a StagePlan
    for item in items:  # checks its fields against each other)
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OverrideError(f"--set {item!r}: write SECTION.FIELD=VALUE, e.g. fit.epochs=5000")
        if key in _TOP:
            changes.setdefault("", {})[key] = _parse(value, typing.get_type_hints(Scale)[key], key)
            continue
        sec, _, name = key.partition(".")
        if sec not in SECTIONS:
            raise OverrideError(
                f"--set {item!r}: unknown section {sec!r}; sections: "
                f"{', '.join(SECTIONS)} (and top-level {', '.join(_TOP)})"
            )
        hints = typing.get_type_hints(type(getattr(scale, sec)))
        if name not in hints:
            valid = ", ".join(k for k in _valid_keys(scale) if k.startswith(sec + "."))
            raise OverrideError(f"--set {item!r}: {sec} has no field {name!r}; valid fields: {valid}")
        changes.setdefault(sec, {})[name] = _parse(value, hints[name], key)
        if name in _CHOICES and changes[sec][name] not in _CHOICES[name]:
            raise OverrideError(f"--set {item!r}: unknown {name}; use one of {', '.join(_CHOICES[name])}")
    top = changes.pop("", {})
    try:
        sections = {sec: replace(getattr(scale, sec), **kv) for sec, kv in changes.items()}
    except ValueError as e:  # e.g. a StagePlan whose fields disagree
        raise OverrideError(f"--set: {e}") from None
    if not items:
        return scale
    return replace(scale, **top, **sections, overrides=scale.overrides + tuple(items))
