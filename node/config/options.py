"""Typer options generated from the key declarations.

    @app.command()
    @key_options()
    def start(config: ..., flags: dict[str, Any]) -> None: ...

:func:`key_options` adds one option per key to a command (``--batch-size``, ``--overlap/--no-overlap``,
``--listen`` repeatable), grouped by section in ``--help``, and hands the command their values as
``flags``, a dict by dotted key where None means "not given" (as :func:`node.config.load_config` takes).
Option values are not checked here beyond their type: the checks are the same for every source.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Optional

import typer

from node.config.keys import BY_DOTTED, KEYS, Key
from node.config.template import constraint

FLAGS_PARAM = "flags"


def option_help(key: Key) -> str:
    """The key's help, its limits, and where else it can be set. No square brackets: rich reads them as markup."""
    if key.default is None:
        default = "unset"
    elif key.kind is bool:
        default = "true" if key.default else "false"
    elif key.kind is list:
        default = ", ".join(key.default) or "none"
    else:
        default = key.default if key.default != "" else '""'
    limits = constraint(key)
    repeat = " Repeatable." if key.kind is list else ""
    where = f"config {key.dotted}, env {key.env}; default: {default}"
    return f"{key.help}{f' ({limits})' if limits else ''}{repeat} ({where})"


def _parameter(key: Key) -> inspect.Parameter:
    kind: Any = list[str] if key.kind is list else key.kind
    decls = (f"{key.flag}/--no-{key.flag[2:]}",) if key.kind is bool else (key.flag,)
    option = typer.Option(*decls, help=option_help(key), rich_help_panel=f"{key.section} settings",
                          show_default=False)
    return inspect.Parameter(key.param, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[kind], option])


def key_options(dotted: Iterable[str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a typer command with one option per key (all keys, or those named); the command receives
    them as ``flags``: {dotted key: value or None}."""
    keys = [BY_DOTTED[d] for d in dotted] if dotted is not None else list(KEYS)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(command).parameters.values() if p.name != FLAGS_PARAM]
        generated = [_parameter(k) for k in keys]

        @functools.wraps(command)
        def with_flags(**kwargs: Any) -> Any:
            flags = {k.dotted: kwargs.pop(k.param) for k in keys}
            return command(**kwargs, **{FLAGS_PARAM: flags})

        params = own + generated
        with_flags.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        with_flags.__annotations__ = {p.name: p.annotation for p in params}
        del with_flags.__wrapped__  # typer must see the generated signature, not the command's own
        return with_flags

    return decorate
