"""The settings reference: every ``K2_*`` environment variable, from the settings classes of
:mod:`k2.config` (and each exchange's ``config.py``), with its type, default and description."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from generators.markdown import code, heading, page, prose, table
from k2 import config
from k2.config import ENV_PREFIX, NESTED_DELIMITER, Settings, unknown_env_vars
from k2.exchanges import EXCHANGES

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
_BOUNDS = ((Ge, "ge", "≥"), (Gt, "gt", ">"), (Le, "le", "≤"), (Lt, "lt", "<"))


def env_name(*path: str) -> str:
    """``("api", "port")`` → ``K2_API__PORT``."""
    return (ENV_PREFIX + NESTED_DELIMITER.join(path)).upper()


def _section_type(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def type_text(annotation: Any) -> str:
    """How a value of ``annotation`` is written in the environment."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return type_text(inner)
    if origin is Literal:
        return "one of " + ", ".join(code(str(arg)) for arg in args)
    if origin is tuple:
        return f"list of {type_text(args[0])} (JSON)"
    if origin is dict:
        return f"map of {type_text(args[0])} to {type_text(args[1])} (JSON)"
    if annotation is SecretStr:
        return "string, secret (masked when shown)"
    return _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(field: FieldInfo) -> str:
    limits = [
        f"{sign} {getattr(item, attribute)}"
        for item in field.metadata
        for kind, attribute, sign in _BOUNDS
        if isinstance(item, kind)
    ]
    patterns = [item.pattern for item in field.metadata if getattr(item, "pattern", None)]
    limits.extend(f"matching {code(pattern)}" for pattern in patterns)
    return ", ".join(limits)


def default_text(value: Any, root: Path) -> str:
    """A default as it would be written in the environment (paths in the checkout relative to
    it, so the page does not name the machine it was built on)."""
    if value is None:
        return "unset"
    if isinstance(value, Path):
        shown = value.relative_to(root) if value.is_relative_to(root) else value
        return code(str(shown))
    if isinstance(value, bool):
        return code(str(value).lower())
    if isinstance(value, float) and value.is_integer():
        return code(str(int(value)))
    if isinstance(value, tuple | list | dict):
        data = list(value) if isinstance(value, tuple) else value
        return code(json.dumps(data, separators=(",", ":"), default=str))
    return code(str(value)) if str(value) else code('""')


def _client_value(path: tuple[str, ...], name: str) -> Any:
    """What an exchange's feed client uses for a setting of its section left unset: the client
    class's attribute of the same name (``max_symbols_per_connection``: the exchange's limit)."""
    if len(path) == 2 and path[0] == "ingest" and path[1] in EXCHANGES:
        return getattr(EXCHANGES[path[1]].client_type(), name, None)
    return None


def _row(path: tuple[str, ...], name: str, field: FieldInfo, root: Path) -> list[str]:
    kind = type_text(field.annotation)
    bounds = _bounds(field)
    default = default_text(field.get_default(call_default_factory=True), root)
    fallback = _client_value(path, name) if default == "unset" else None
    if fallback is not None:
        default = f"unset: {default_text(fallback, root)}"
    return [
        code(env_name(*path, name)),
        f"{kind}, {bounds}" if bounds else kind,
        default,
        prose(field.description),
    ]


def _sections(model: type[BaseModel], path: tuple[str, ...], root: Path) -> Iterator[str]:
    """The heading, description and table of ``model``'s own settings, then its subsections
    (an exchange's section under the ingest's)."""
    title = code(env_name(*path, "*")) if path else "General"
    yield heading(2 if len(path) <= 1 else 3, title, env_name(*path) if path else "general")
    yield prose(model.__doc__) if path else ""
    rows = [
        _row(path, name, field, root)
        for name, field in model.model_fields.items()
        if _section_type(field) is None
    ]
    if rows:
        yield table(("variable", "type", "default", "description"), rows)
    if path == ("stack",) and not unknown_env_vars({env_name("home"): "."}):
        short, full = code(env_name("home")), code(env_name(*path, "home"))
        yield f"{short} is accepted as the short form of {full}."
    for name, field in model.model_fields.items():
        section = _section_type(field)
        if section is not None:
            yield from _sections(section, (*path, name), root)


def settings_page(root: Path) -> str:
    """The whole page; ``root`` is the checkout, against which default paths are shown."""
    example = code(env_name("exchanges") + """='["kraken","binance"]'""")
    return page(
        "# Settings",
        "Every setting K2 reads, generated from the code "
        f"({code('k2.config')} and each exchange's {code('config.py')}) when the site is built.",
        prose(config.__doc__).split("\n\n", 1)[-1],
        f"Lists and maps are written as JSON, for example {example}. The defaults below are "
        "those of a fresh checkout; `k2 config show` prints the effective values.",
        *_sections(Settings, (), root),
    )
