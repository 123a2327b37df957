"""The frozen Options objects: one table of checks, and one way in.

Each Options class lists its fields' checks (``CHECKS``) built from the few validators here,
so every class words the same mistake the same way. ``Segmenter``, ``Embedder`` and
``Diarizer`` accept their options either as keywords (each one an Options field, same name,
same default: tests/contracts/test_options.py keeps them in step) or as a ready Options object, never
both: a keyword beside ``options=`` would be ignored, so it is refused instead.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from argparse import ArgumentTypeError
from collections.abc import Callable
from dataclasses import fields
from typing import TypeVar

import numpy as np

from powerseg.errors import OptionError

F = TypeVar("F", bound=Callable)
Check = Callable[[str, object], None]


def options_repr(pipeline, state: str) -> str:
    """``Name(option=value, ...; state)``: a pipeline is the options that made it and what
    it runs on, not its arrays or sessions."""
    options = pipeline.options
    shown = ", ".join(f"{f.name}={getattr(options, f.name)!r}" for f in fields(options))
    return f"{type(pipeline).__name__}({shown}; {state})"


def integer(none: bool = False) -> Check:
    """A whole number >= 1 (numpy's too; not a bool), or None where ``none``."""
    def check(name: str, value: object) -> None:
        if value is None and none:
            return
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise OptionError(f"{name} must be a whole number >= 1{' or None' if none else ''}, "
                              f"got {value!r}")
    return check


def number(positive: bool = True, none: bool = False, unit: str = "") -> Check:
    """A finite number, > 0 (``positive``) or >= 0, or None where ``none``."""
    what = f"a number{f' of {unit}' if unit else ''} {'>' if positive else '>='} 0"

    def check(name: str, value: object) -> None:
        if value is None and none:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or \
                not math.isfinite(value) or not (value > 0 if positive else value >= 0):
            raise OptionError(f"{name} must be {what}, got {value!r}")
    return check


def argument(check: Check, kind: type) -> Callable[[str], object]:
    """A command-line option's ``type=`` from a check: the text as ``kind``, then the same
    check as the Options field, worded without the name (argparse names the option first)."""
    def convert(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            value = text  # refused by the check, in its words
        try:
            check("", value)
        except OptionError as error:
            raise ArgumentTypeError(str(error).strip()) from None
        return value
    return convert


def validate(options: object, checks: dict[str, Check]) -> None:
    """Normalise the model paths and provider lists of a frozen Options object (paths as
    strings, lists as tuples: hashable and printable), then run its fields' checks."""
    for field in fields(options):
        value = getattr(options, field.name)
        if isinstance(value, os.PathLike):
            object.__setattr__(options, field.name, os.fspath(value))
        elif isinstance(value, list) and field.name == "providers":
            object.__setattr__(options, field.name, tuple(value))
    for name, check in checks.items():
        check(name, getattr(options, name))


def keywords_or_options(options_class: type) -> Callable[[F], F]:
    """Wrap an ``__init__(self, ..., options=None, ...)``: an OptionError naming the
    keywords when any of ``options_class``'s fields is given together with ``options=``."""
    names = {f.name for f in fields(options_class)}

    def decorate(init: F) -> F:
        parameters = list(inspect.signature(init).parameters)[1:]  # without self

        @functools.wraps(init)
        def wrapper(self, *args, **kwargs):
            if kwargs.get("options") is not None:
                given = [p for p in parameters[:len(args)] + list(kwargs) if p in names]
                if given:
                    raise OptionError(
                        f"{type(self).__name__}: give either keywords or options=, not both "
                        f"({', '.join(given)} would be ignored beside options=)")
            return init(self, *args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate
