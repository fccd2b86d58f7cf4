"""Errors as data: a problem is a location in the spec document and a reason; both edges (the HTTP 422
body, the CLI's lines) format them, nothing in between turns them into text and back."""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Loc = tuple[str | int, ...]  # ("parameters", "lr", "low"), ("algorithm", 1); () is the whole document


@dataclass(frozen=True)
class Problem:
    loc: Loc
    msg: str
    kind: str = "value_error"  # "limit_exceeded": over a limit on what a sweep may cost

    @property
    def path(self) -> str:
        """The location as people write it: `parameters.lr.low`, `algorithm[1]`, "" for the document."""
        return dotted(self.loc)


def dotted(loc: Iterable[str | int]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 3, 6, 6, 60, 60, 40


def shown(value: Any) -> str:
    """A value as a message quotes it: its repr, cut short (a message never echoes unbounded input)."""
    return _SHOWN.repr(value)


class SpecError(ValueError):
    """An invalid spec; `.problems` names each offending location and why."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.msg}" if p.loc else p.msg for p in problems))
