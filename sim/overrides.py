"""Turn ``key=value`` text into typed :class:`~sim.Scenario` changes.

The CLI's ``--set`` and :func:`sim.sweep`'s ``param`` share this, so both accept the same names
and report the same errors. Keys are Scenario field names, or ``haproxy.<field>`` for a field of
:class:`~sim.HAProxyConfig`. Values are parsed by the field's annotated type:

* ``int``, ``float``, ``str`` and ``bool`` (``true``/``false``/``1``/``0``/``yes``/``no``);
* ``tuple[str, ...]`` as a comma-separated list (``gateway_nodes=node-1,node-3``);
* ``X | None`` accepts ``none`` (or an empty value) for ``None``;
* ``haproxy`` itself accepts ``none``, ``tcp`` or ``http`` (a default :class:`~sim.HAProxyConfig`
  of that mode); set its fields with ``haproxy.send_proxy=v2`` and so on.

``failures`` cannot be set as text here: build :class:`~sim.NodeDown` events in Python, or use
the CLI's ``--node-down`` option.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal, get_args, get_origin

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _settable_fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def allowed_keys() -> list[str]:
    """Every key that :func:`apply_overrides` accepts, in a stable order."""
    from sim.net.haproxy import HAProxyConfig
    from sim.scenario import Scenario

    keys = [k for k in _settable_fields(Scenario) if k != "failures"]
    keys += [f"haproxy.{k}" for k in _settable_fields(HAProxyConfig)]
    return keys


def _parse(key: str, text: str, tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if text.strip().lower() in {"none", "null", ""}:
            return None
        if len(args) == 1:
            return _parse(key, text, args[0])
        for arg in args:
            try:
                return _parse(key, text, arg)
            except ValueError:
                continue
        raise ValueError(f"{key}: cannot parse {text!r}")
    if origin is Literal:
        choices = get_args(tp)
        for choice in choices:
            if str(choice) == text:
                return choice
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{key}: {text!r} is not allowed; allowed: {allowed}")
    if origin is tuple:
        items = [t.strip() for t in text.split(",") if t.strip()]
        (item_tp, *_rest) = get_args(tp) or (str,)
        return tuple(_parse(key, t, item_tp) for t in items)
    if tp is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{key}: expected true or false, got {text!r}")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{key}: expected an integer, got {text!r}") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{key}: expected a number, got {text!r}") from None
    if tp is str:
        return text
    raise ValueError(f"{key}: cannot be set from text")


def parse_value(key: str, text: str) -> Any:
    """Parse ``text`` for ``key`` (a Scenario field or ``haproxy.<field>``) by the field's type."""
    from sim.net.haproxy import HAProxyConfig
    from sim.scenario import Scenario

    if key.startswith("haproxy."):
        sub = key.removeprefix("haproxy.")
        fields = _settable_fields(HAProxyConfig)
        if sub not in fields:
            raise ValueError(_unknown(key))
        return _parse(key, text, fields[sub])
    fields = _settable_fields(Scenario)
    if key not in fields or key == "failures":
        raise ValueError(_unknown(key))
    if key == "haproxy":
        low = text.strip().lower()
        if low in {"none", ""}:
            return None
        if low in {"tcp", "http"}:
            return HAProxyConfig(mode=low)
        raise ValueError("haproxy: allowed values are none, tcp, http (then haproxy.<field>=...)")
    return _parse(key, text, fields[key])


def _unknown(key: str) -> str:
    return f"unknown scenario parameter {key!r}; allowed: {', '.join(allowed_keys())}"


def check_key(key: str) -> None:
    """Raise ``ValueError`` listing the allowed keys when ``key`` is not one."""
    if key not in allowed_keys():
        raise ValueError(_unknown(key))


def apply_overrides(scenario: Any, changes: Iterable[tuple[str, Any]]) -> Any:
    """Return ``scenario`` with ``changes`` applied; values may be typed or text.

    Text values are parsed with :func:`parse_value`. The result is validated by the Scenario's
    own constructor, so an out-of-range value raises ``ValueError`` naming the field.
    """
    from sim.net.haproxy import HAProxyConfig

    plain: dict[str, Any] = {}
    sub: dict[str, Any] = {}
    for key, value in changes:
        check_key(key)
        if isinstance(value, str):
            value = parse_value(key, value)
        if key.startswith("haproxy."):
            sub[key.removeprefix("haproxy.")] = value
        else:
            plain[key] = value
    if sub:
        base = plain.get("haproxy", scenario.haproxy)
        if base is None:
            base = HAProxyConfig()
        plain["haproxy"] = dataclasses.replace(base, **sub)
    return dataclasses.replace(scenario, **plain)
