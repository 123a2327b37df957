"""One way into the frozen Options objects: a constructor takes keywords or ``options=``.

``Segmenter``, ``Embedder`` and ``Diarizer`` accept their options either as keywords (each one
an Options field, same name, same default: tests/test_options.py keeps them in step) or as a
ready Options object, never both: a keyword beside ``options=`` would be ignored, so it is
refused instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import TypeVar

from powerseg.errors import OptionError

F = TypeVar("F", bound=Callable)


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
