"""First pass: structure and types with pydantic, with readable, located messages.

pydantic reports each error with a ``loc`` tuple in which union members appear as
extra tags (``('projections', 'up_1', 'rule', 'DendriticPredictionRule', ...)``). We walk
the schema's type annotations alongside the ``loc`` to strip those tags (giving the path
as written in the YAML), and rewrite the errors of a union into one message: the member
the user evidently meant (``{dendritic_prediction: {...}}`` -> that member's errors), or a
summary of the accepted forms (``expected 'fixed' or one of {dendritic_prediction: {...}},
{apical_silencing: {...}}``).
"""

from __future__ import annotations

import copy
import difflib
import math
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from microcircuit.spec.errors import Problem, did_you_mean, listing
from microcircuit.spec.loader import Path, SourceMap, is_under
from microcircuit.spec.schema import Spec, TaskSpec

#: Top-level keys consumed before validation (so valid although not on :class:`Spec`).
EXTRA_TOP_LEVEL_KEYS = ("extends",)


# ---------------------------------------------------------------- schema type helpers
def strip(tp: Any) -> Any:
    """Remove ``Annotated`` and ``Optional`` wrappers (a union with one non-None member)."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif is_union(tp) and len(members(tp)) == 1:
            tp = members(tp)[0]
        else:
            return tp


def is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def members(tp: Any) -> list[Any]:
    """The non-None members of a union (stripped), or ``[tp]``."""
    if not is_union(tp):
        return [tp]
    return [strip(arm) for arm in get_args(tp) if arm is not type(None)]


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def model_fields(model: type[BaseModel]) -> dict[str, Any]:
    """Field annotations of a model by the key written in YAML (alias if any)."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def key_names(tp: Any) -> list[str]:
    """Keys a mapping of type ``tp`` may have (fields of a model or of a union's models)."""
    names: list[str] = []
    for arm in members(strip(tp)):
        if is_model(arm):
            names += [n for n in model_fields(arm) if n not in names]
    if tp is Spec:
        names += EXTRA_TOP_LEVEL_KEYS
    return names


def child_type(tp: Any, key: str | int) -> Any:
    """The type of ``value[key]`` for a value of type ``tp`` (None if unknown)."""
    tp = strip(tp)
    for arm in members(tp):
        if is_model(arm):
            annotation = model_fields(arm).get(key)  # type: ignore[arg-type]
            if annotation is not None:
                return annotation
        elif get_origin(arm) is dict:
            return get_args(arm)[1]
        elif get_origin(arm) is list:
            return get_args(arm)[0]
    return None


def is_container(tp: Any) -> bool:
    """True if values of type ``tp`` can be mappings (a model, a dict or a union holding one)."""
    return any(is_model(arm) or get_origin(arm) is dict for arm in members(strip(tp)))


def is_choice(tp: Any) -> bool:
    """True for a tagged choice: a union of one-key models (``rule``) or the ``task`` block."""
    tp = strip(tp)
    return (is_union(tp) and any(is_model(arm) for arm in members(tp))) or tp is TaskSpec


def describe_type(tp: Any) -> str:
    """A short human form of an accepted type, e.g. ``{dendritic_prediction: {...}}``."""
    tp = strip(tp)
    if get_origin(tp) is Literal:
        return " or ".join(repr(v) for v in get_args(tp))
    if is_model(tp):
        fields = model_fields(tp)
        if len(fields) == 1:
            (name, inner), = fields.items()
            return f"{{{name}: {'{...}' if is_container(inner) else '<value>'}}}"
        return "a mapping"
    origin = get_origin(tp)
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    return {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(tp, str(tp))


def describe_value(value: Any) -> str:
    """A short form of a YAML value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return f"a mapping with keys {listing(map(str, value))}" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def get_path(data: Any, path: Path) -> Any:
    """``data[path[0]][path[1]]...`` or None where the path does not exist."""
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# ---------------------------------------------------------------- pydantic errors
@dataclass
class _Error:
    """A pydantic error with its loc split into the YAML path and the union tags."""

    raw: dict
    path: Path
    unions: list[tuple[int, str, Any]] = field(default_factory=list)  # (path length, tag, union type)
    parent: Any = None  # type of the mapping holding the last key
    leaf: Any = None    # type expected at the path


def _split_loc(raw: dict, root: Any = Spec) -> _Error:
    tp, path, unions, parent = root, [], [], None
    for part in raw["loc"]:
        tp = strip(tp)
        if is_union(tp):
            unions.append((len(path), str(part), tp))
            tp = _member_for_tag(tp, str(part))
            continue
        parent = tp
        path.append(part)
        tp = child_type(tp, part) if tp is not None else None
    return _Error(raw, tuple(path), unions, parent, tp)


def _member_for_tag(union: Any, tag: str) -> Any:
    arms = members(union)
    for arm in arms:
        if is_model(arm) and arm.__name__ == tag:
            return arm
        if get_origin(arm) is Literal and tag.startswith("literal["):
            return arm
    others = [arm for arm in arms if not is_model(arm) and get_origin(arm) is not Literal]
    if tag.startswith(("list", "dict")):
        others = [arm for arm in others if get_origin(arm) is (list if tag.startswith("list") else dict)]
    return others[0] if len(others) == 1 else None


_TYPE_MESSAGES = {
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
    "dict_type": "expected a mapping (key: value)",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
}


def _single_message(error: _Error, extras: dict[Path, list[str]]) -> tuple[str, str] | None:
    """Message and hint for an error outside any union; None to drop it."""
    raw, path = error.raw, error.path
    kind, value = raw["type"], raw.get("input")
    key = path[-1] if path else ""
    if kind == "extra_forbidden":
        valid = key_names(error.parent)
        return f"unknown key '{key}' (valid: {listing(valid)})", did_you_mean(key, valid)
    if kind == "missing":
        if difflib.get_close_matches(str(key), extras.get(path[:-1], []), n=1):
            return None  # explained by the misspelt key next to it
        return f"missing required key '{key}'", ""
    if kind == "literal_error":
        expected = raw.get("ctx", {}).get("expected", "")
        options = [str(v) for v in get_args(strip(error.leaf))] if error.leaf is not None else []
        return f"expected {expected}, got {describe_value(value)}", did_you_mean(value, options)
    if kind in _TYPE_MESSAGES:
        hint = ""
        if isinstance(value, str) and kind.startswith(("int", "float")) and _is_number(value):
            hint = "remove the quotes to make it a number"
        return f"{_TYPE_MESSAGES[kind]}, got {describe_value(value)}", hint
    if kind == "value_error":  # a validator of the schema: its own words (message; hint)
        message, _, hint = str(raw.get("ctx", {}).get("error", raw["msg"])).partition("; ")
        return f"{message}, got {describe_value(value)}", hint
    message = raw["msg"]
    return f"{message[:1].lower()}{message[1:]}, got {describe_value(value)}", ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _union_messages(group: list[_Error], data: Any, extras: dict) -> list[tuple[Path, str, str]]:
    """Messages for the errors of one union: the intended member's, or a summary."""
    length, _, union = group[0].unions[0]
    base = group[0].path[:length]
    value = get_path(data, base)
    arms = members(union)
    chosen = _intended_member(arms, value)
    if chosen is not None:
        inner = []
        for error in group:
            if _member_for_tag(union, error.unions[0][1]) is chosen:
                inner.append(_Error(error.raw, error.path, error.unions[1:], error.parent, error.leaf))
        if inner:
            return _messages(inner, data, extras)
    literals = [repr(v) for arm in arms if get_origin(arm) is Literal for v in get_args(arm)]
    forms = [describe_type(arm) for arm in arms if get_origin(arm) is not Literal]
    if literals and forms:
        expected = f"{_or(literals)}{',' if len(literals) > 1 else ''} or one of {', '.join(forms)}"
    else:
        expected = _or(literals or forms)
    options = [v.strip("'") for v in literals]
    if isinstance(value, dict):
        options = [name for arm in arms if is_model(arm) for name in model_fields(arm)]
        hint = did_you_mean(next(iter(value), None), options) if len(value) == 1 else ""
    else:
        hint = did_you_mean(value, options)
    return [(base, f"expected {expected}; got {describe_value(value)}", hint)]


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _intended_member(arms: list[Any], value: Any) -> Any:
    """The union member the value evidently aims at, or None (then: summary)."""
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        for arm in arms:
            if is_model(arm) and key in model_fields(arm):
                return arm
        return None
    if isinstance(value, list):
        return next((arm for arm in arms if get_origin(arm) is list), None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return next((arm for arm in arms if arm in (float, int)), None)
    return None


def _messages(errors: list[_Error], data: Any, extras: dict) -> list[tuple[Path, str, str]]:
    out: list[tuple[Path, str, str]] = []
    groups: dict[Path, list[_Error]] = {}
    for error in errors:
        if error.unions:
            groups.setdefault(error.path[: error.unions[0][0]], []).append(error)
        else:
            message = _single_message(error, extras)
            if message is not None:
                out.append((error.path, *message))
    for group in groups.values():
        out += _union_messages(group, data, extras)
    return out


def explain(exc: ValidationError, data: Any) -> list[tuple[Path, str, str, Path]]:
    """Turn a pydantic ValidationError on ``data`` into ``(path, message, hint, prune)`` items.

    ``prune`` is the path whose removal would silence the error (the union's base for a
    union mismatch), used to run the semantic pass on what remains.
    """
    errors = [_split_loc(raw) for raw in exc.errors()]
    extras: dict[Path, list[str]] = {}
    for error in errors:
        if error.raw["type"] == "extra_forbidden" and not error.unions and error.path:
            extras.setdefault(error.path[:-1], []).append(str(error.path[-1]))
    prune = {e.path: (e.path[: e.unions[0][0]] if e.unions else e.path) for e in errors}
    result = []
    for path, message, hint in _messages(errors, data, extras):
        result.append((path, message, hint, prune.get(path, path)))
    return result


# ---------------------------------------------------------------- non-finite numbers
def non_finite(data: Any, path: Path = ()) -> list[Path]:
    """Paths of every infinite or NaN number (YAML ``.inf``, ``.nan``) in ``data``.

    ``parameters`` are skipped: a parameter is checked where a ``$reference`` puts it.
    """
    if isinstance(data, float):
        return [] if math.isfinite(data) else [path]
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    found = []
    for key, value in items:
        if path + (key,) != ("parameters",):
            found += non_finite(value, path + (key,))
    return found


def _spelled(value: float) -> str:
    return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")


# ---------------------------------------------------------------- entry point
def validate_structure(data: dict, smap: SourceMap, reported: Sequence[Path] = ()
                       ) -> tuple[Spec | None, list[Problem], list[Path]]:
    """Validate ``data`` against :class:`Spec` (strictly: no strings taken as numbers).

    Args:
        data: the resolved mapping (not modified).
        smap: where each key was written.
        reported: paths already reported by earlier stages; errors at or below them are
            not repeated.

    Returns:
        ``(spec, problems, pruned)``. If ``data`` is invalid, ``spec`` is the model of
        ``data`` with the offending keys removed (so that the semantic pass can still run)
        or None if that is not valid either, and ``pruned`` lists the removed paths
        (semantic problems related to them should be dropped).

    Infinite and NaN numbers are errors wherever they are written: no quantity of a
    circuit is infinite, and NaN compares false with every bound.
    """
    bad = non_finite(data)
    try:
        spec = Spec.model_validate(data, strict=True)
        found = []
    except ValidationError as exc:
        spec, found = None, explain(exc, data)
    if spec is not None and not bad:
        return spec, [], []
    problems, pruned = [], []
    for path in bad:
        if not any(is_under(path, r) for r in reported):
            problems.append(smap.problem(path, f"expected a finite number, got {_spelled(get_path(data, path))}",
                                         "write a finite value"))
        pruned.append(path)
    for path, message, hint, prune in found:
        if any(is_under(path, b) for b in bad):
            pruned.append(prune)  # explained by the non-finite number there
            continue
        if not any(is_under(path, r) or is_under(prune, r) for r in reported):
            problems.append(smap.problem(path, message, hint))
        pruned.append(prune)
    trimmed = copy.deepcopy(data)
    for path in sorted(set(pruned), key=len, reverse=True):
        _delete(trimmed, path)
    try:
        spec = Spec.model_validate(trimmed, strict=True)
    except ValidationError:
        spec = None
    return spec, problems, pruned


def _delete(data: Any, path: Path) -> None:
    """Remove ``path`` from ``data``; a list item takes its whole list with it."""
    while path and isinstance(get_path(data, path[:-1]), list):
        path = path[:-1]
    parent = get_path(data, path[:-1])
    if path and isinstance(parent, dict):
        parent.pop(path[-1], None)
