"""Which fields of the events hold personal data, and how to reach every string inside them.

A field annotated `Annotated[..., PERSONAL]` holds what a data subject said or what a model said about
them: every string leaf inside its value is personal (dict keys and numbers are not). The model only
marks; how a leaf is sealed, opened or erased is the adapters' business (ADR 0008). The walk works on
the JSON-like form of an event (`msgspec.to_builtins`), so it applies to stored and published events alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi

PERSONAL = msgspec.Meta(extra={"personal": True})
PersonalText = Annotated[str, PERSONAL]
PersonalData = Annotated[Any, PERSONAL]
PersonalDict = Annotated[dict[str, Any], PERSONAL]

# A data subject is named by a pseudonymous id (`customer-4711`), never by an e-mail or a name: the id
# stays readable in every event, log and read model after the subject is erased.
SUBJECT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
SUBJECT = re.compile(SUBJECT_PATTERN)
SubjectId = Annotated[
    str, msgspec.Meta(pattern=SUBJECT_PATTERN, description="A pseudonymous data subject id, e.g. customer-4711")
]


class All(msgspec.Struct, frozen=True):
    """Every string leaf of this value is personal."""


class Fields(msgspec.Struct, frozen=True):
    """A struct (as a dict): the plans of those of its fields that hold personal data, by encoded name."""

    fields: dict[str, Plan]


class Items(msgspec.Struct, frozen=True):
    """A list or a dict: the plan of each of its items (or values)."""

    item: Plan


Plan = All | Fields | Items


def _plan_of(info: mi.Type, personal: bool, seen: frozenset[type]) -> Plan | None:
    if isinstance(info, mi.Metadata):
        marked = bool(info.extra and info.extra.get("personal"))
        return _plan_of(info.type, personal or marked, seen)
    if personal:
        return All()
    if isinstance(info, mi.StructType):
        if info.cls in seen:
            return None
        found = {
            f.encode_name: plan for f in info.fields if (plan := _plan_of(f.type, False, seen | {info.cls})) is not None
        }
        return Fields(found) if found else None
    if isinstance(info, mi.ListType | mi.DictType | mi.TupleType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        inner = info.value_type if isinstance(info, mi.DictType) else getattr(info, "item_type", None)
        if inner is None:
            return None
        plan = _plan_of(inner, False, seen)
        return Items(plan) if plan is not None else None
    if isinstance(info, mi.UnionType):
        plans = [p for t in info.types if (p := _plan_of(t, False, seen)) is not None]
        return plans[0] if plans else None
    return None


@cache
def personal_plan(cls: Any) -> Plan | None:
    """The personal fields of an event class (None for a class that has none)."""
    return _plan_of(mi.type_info(cls), False, frozenset())


@cache
def personal_fields(cls: Any) -> frozenset[str]:
    """Dotted paths of the personal fields, e.g. `messages[].content` — for review and for tests."""
    plan = personal_plan(cls)
    return frozenset(_paths(plan, "")) if plan is not None else frozenset()


def _paths(plan: Plan, prefix: str) -> list[str]:
    if isinstance(plan, All):
        return [prefix]
    if isinstance(plan, Items):
        return _paths(plan.item, prefix + "[]")
    return [path for name, sub in plan.fields.items() for path in _paths(sub, f"{prefix}.{name}" if prefix else name)]


def transform(value: Any, plan: Plan, leaf: Callable[[str], str]) -> Any:
    """The JSON-like `value` with `leaf` applied to each personal string in it (a new value; the input is kept)."""
    if isinstance(plan, All):
        return _every_string(value, leaf)
    if isinstance(plan, Items):
        if isinstance(value, list):
            return [transform(item, plan.item, leaf) for item in value]
        if isinstance(value, dict):
            return {key: transform(item, plan.item, leaf) for key, item in value.items()}
        return value
    if not isinstance(value, dict):
        return value
    changed = dict(value)
    for name, sub in plan.fields.items():
        if name in changed and changed[name] is not None:
            changed[name] = transform(changed[name], sub, leaf)
    return changed


def _every_string(value: Any, leaf: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return leaf(value)
    if isinstance(value, list):
        return [_every_string(item, leaf) for item in value]
    if isinstance(value, dict):
        return {key: _every_string(item, leaf) for key, item in value.items()}
    return value
