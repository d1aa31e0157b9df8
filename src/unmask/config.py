"""Frozen-dataclass configs loaded from YAML.

Precedence: dataclass defaults < YAML file < `--set key=value` overrides. Unknown keys are
errors that list the valid keys, so a typo never silently falls back to a default. Nested
dataclasses are addressed with dots (`--set optim.lr=0.01`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from unmask.errors import ConfigError

T = TypeVar("T")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _short(value: Any, limit: int = 60) -> str:
    """repr() cut to one short line, so a hostile value never floods an error message."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _key(prefix: str, key: Any) -> str:
    k = str(key)
    return prefix + k if k.isprintable() else prefix + _short(k, 40)


def _coerce(value: Any, tp: Any, where: str, strict: bool = False) -> Any:
    """Convert a YAML/CLI/JSON value to the annotated type, or raise ConfigError."""
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: must not be empty")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields")
        return from_dict(tp, value, prefix=f"{where}.", strict=strict)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{where}: {_short(value)} is not one of {', '.join(map(repr, allowed))}"
            )
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, Iterable):
            raise ConfigError(f"{where}: expected a list")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        if isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a list, got a mapping")
        items = [_coerce(v, inner, f"{where}[]", strict) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"{where}: expected true/false, got {_short(value)}")
    if tp in (int, float, str):
        # Only scalars: str([...]) would silently turn a list into a folder name, and
        # bool is an int in Python but never a size.
        if isinstance(value, (Mapping, list, tuple, set)) or (
            isinstance(value, bool) and tp is not str
        ):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {_short(value)}")
        try:
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {_short(value)}") from None
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "", strict: bool = False) -> T:
    """Build dataclass `cls` from a mapping; unknown keys raise with the valid keys listed.
    `strict` (saved models): every field must be present too, at every level."""
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_), key=str)
    if unknown:
        raise ConfigError(
            # keys shown as repr() when odd (newlines, control characters): one line always
            f"unknown config key(s) {', '.join(_key(prefix, k) for k in unknown)[:200]}; "
            f"valid keys{' under ' + prefix.rstrip('.') if prefix else ''}: {', '.join(sorted(types_))}"
        )
    if strict:
        missing = [k for k in types_ if k not in data]
        if missing:
            raise ConfigError(f"missing key(s) {', '.join(prefix + k for k in missing)}")
    kwargs = {k: _coerce(v, types_[k], prefix + k, strict) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    """A plain, JSON/YAML-serialisable dict of a (nested) dataclass."""
    out = dataclasses.asdict(obj)

    def fix(v: Any) -> Any:
        if isinstance(v, tuple):
            return [fix(x) for x in v]
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return fix(out)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`["a.b=1", "c=x"]` -> nested dict, values parsed as YAML scalars."""
    import yaml

    nested: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
        node[parts[-1]] = value
    return nested


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        # An explicit empty mapping (`--set detector.kwargs={}`) clears; others merge.
        if isinstance(v, Mapping) and v and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning every failure into a one-line ConfigError."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{p}: invalid YAML{where}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of config keys")
    return data


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> T:
    """defaults < YAML at `path` < `extra` (e.g. typed CLI flags) < `--set` overrides."""
    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    if extra:
        data = _merge(data, extra)
    data = _merge(data, parse_overrides(overrides))
    return from_dict(cls, data)
