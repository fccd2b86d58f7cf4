"""A spec document read with bounded cost, whatever the text: YAML (JSON is YAML too) or strict JSON in,
plain JSON data out (dict with str keys, list, str, int, float, bool, None), or a `SpecError` saying what
is wrong and where.

A few hundred bytes can otherwise cost minutes and gigabytes, or break a sweep for good. Refused:
- YAML aliases whose expansion passes `MAX_NODES` nodes in all (the "billion laughs": ten aliases of ten
  aliases of … expand exponentially wherever the document is walked), and recursive aliases;
- nesting deeper than `MAX_DEPTH` (a spec needs about eight levels);
- YAML tags without a JSON meaning (`!!binary`, `!!set`, `!!omap`, `!!timestamp`, local tags): a spec is
  JSON data. An unquoted date stays the string it looks like;
- integers beyond ±`MAX_INTEGER` (2^53 − 1, what every JSON reader holds exactly) and non-finite numbers
  (YAML's `.inf`/`.nan`, JSON's `NaN`/`Infinity`, `1e309`);
- strings that are not valid Unicode (a lone surrogate such as `"\\ud800"`: no store can write it back out);
- mapping keys that are not strings.

Each check costs time linear in the text (YAML's events come from libyaml where it is installed).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, ClassVar

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from sweep_service.problems import Loc, Problem, SpecError

MAX_NODES = 10_000  # values in the whole document, aliases expanded (a large spec has a few thousand)
MAX_DEPTH = 32
MAX_INTEGER = 2**53 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")

try:  # libyaml's parser (C) for the events; the composition below is ours either way
    from yaml._yaml import CParser as _EventSource

    _C_EVENTS = True
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _C_EVENTS = False


class _DocumentError(Exception):
    def __init__(self, msg: str, loc: Loc = ()):
        super().__init__(msg)
        self.problem = Problem(loc, msg)


def _utf8(text: str | bytes, kind: str) -> str:
    """The body as text; bytes that are not UTF-8 are a problem of the whole document."""
    if isinstance(text, str):
        return text
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not valid {kind}: the body is not UTF-8 ({exc.reason} at byte {exc.start})"
        raise SpecError([Problem((), reason)]) from None


def read_json(text: str | bytes) -> Any:
    """Strict JSON (UTF-8), checked as described above."""
    text = _utf8(text, "JSON")
    try:
        data = json.loads(text, parse_constant=float)  # NaN, Infinity: refused below, with their location
    except RecursionError:
        raise SpecError([Problem((), f"not valid JSON: nested deeper than {MAX_DEPTH} levels")]) from None
    except ValueError as exc:
        raise SpecError([Problem((), f"not valid JSON: {_first_line(exc)}")]) from None
    return checked(data)


def read_yaml(text: str | bytes) -> Any:
    """YAML (or JSON, which YAML reads too), checked as described above."""
    text = _utf8(text, "YAML")
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except _DocumentError as exc:
        raise SpecError([exc.problem]) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([Problem((), f"not valid YAML: {_yaml_reason(exc)}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem((), f"not valid YAML: {_first_line(exc)}")]) from None
    except Exception as exc:  # PyYAML's constructors on explicitly tagged values (`!!bool x`: KeyError, …)
        raise SpecError([Problem((), f"not valid YAML: {type(exc).__name__}: {_first_line(exc)}")]) from None
    finally:
        loader.dispose()
    return checked(data)


def source_lines(text: str | bytes) -> dict[Loc, int]:
    """Where each location of a YAML/JSON document starts (1-based line), for error messages; {} when the text
    cannot be composed within the limits above (the walk then visits at most MAX_NODES values)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except Exception:  # not YAML, or past a limit: the problems say why, without lines
        return {}
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    stack: list[tuple[Node, Loc]] = [(root, ())] if root is not None else []
    while stack:
        node, loc = stack.pop()
        lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode):  # a key of another kind is a problem of its own, on its mapping
                    lines[(*loc, key.value)] = key.start_mark.line + 1  # a field's line is its key's
                    stack.append((value, (*loc, key.value)))
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*loc, index)) for index, item in enumerate(node.value))
    return lines


def checked(data: Any) -> Any:
    """`data` itself, once every value is JSON data within the limits (else SpecError at the first one that
    is not). Walks at most MAX_NODES values, without recursion."""
    stack: list[tuple[Any, Loc]] = [(data, ())]
    counted = 1  # values met so far (walked or waiting on the stack)
    while stack:
        value, loc = stack.pop()
        if isinstance(value, (dict, list)):
            counted += len(value)
            if counted > MAX_NODES:
                what = f"this {'mapping' if isinstance(value, dict) else 'list'} holds {len(value)}"
                raise SpecError([Problem(loc, f"more than {MAX_NODES} values in the document ({what})")])
        if len(loc) > MAX_DEPTH:
            raise SpecError([Problem(loc[:MAX_DEPTH], f"nested deeper than {MAX_DEPTH} levels")])
        problem = _scalar_problem(value)
        if problem:
            raise SpecError([Problem(loc, problem)])
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SpecError([Problem(loc, f"a key must be a string, not {type(key).__name__}")])
                if not key.isascii() and _SURROGATE.search(key):
                    raise SpecError([Problem(loc, "a key is not valid Unicode (a lone surrogate)")])
                stack.append((item, (*loc, key)))
        elif isinstance(value, list):
            stack.extend((item, (*loc, i)) for i, item in enumerate(value))
    return data


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    if isinstance(value, str):
        if not value.isascii() and _SURROGATE.search(value):
            return "not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, int):
        return None if -MAX_INTEGER <= value <= MAX_INTEGER else f"an integer beyond ±{MAX_INTEGER}"
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be a finite number"
    return f"{type(value).__name__} is not JSON data"


def _yaml_reason(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem and where it is (its snippets of the text are left out: they can be long)."""
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    reason = " ".join(part for part in (exc.context, exc.problem) if part) or type(exc).__name__
    return _first_line(ValueError(where + reason))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


# ---- YAML: JSON's types only, aliases and depth bounded while composing ------------------------------------

_JSON_TAGS = ("null", "bool", "int", "float", "str", "seq", "map")
_MERGE_TAG = "tag:yaml.org,2002:merge"  # `<<: *defaults`: folded into its mapping by SafeConstructor


class _JsonConstructor(SafeConstructor):
    """SafeConstructor limited to the tags with a JSON meaning; any other tag is an error."""

    yaml_constructors: ClassVar[dict[Any, Any]] = {
        **{f"tag:yaml.org,2002:{t}": SafeConstructor.yaml_constructors[f"tag:yaml.org,2002:{t}"] for t in _JSON_TAGS},
        None: SafeConstructor.construct_undefined,
    }


class _JsonResolver(Resolver):
    """YAML 1.1's implicit types less timestamps (and `=`): `2020-01-01` stays a string, as in JSON."""

    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's own class attribute, replaced)
        first: [(tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[-1] in _JSON_TAGS or tag == _MERGE_TAG]
        for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    }


class _BoundedComposer(Composer):
    """Composes nodes as PyYAML does, counting each node's size with its aliases expanded."""

    # the parser's, beside this class in the loader
    check_event: Callable[..., bool]
    peek_event: Callable[[], Any]

    def compose_document(self) -> Node | None:
        self._sizes: dict[int, int] = {}  # id(node) -> its size with aliases expanded
        self._total = 0  # values composed so far, aliases expanded
        self._depth = 0
        return super().compose_document()

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None and id(target) not in self._sizes:
                raise _DocumentError(f"{_where(event)}: the alias *{event.anchor} refers to itself")
            node = super().compose_node(parent, index)
            self._count(self._sizes[id(node)] if node is not None else 1, event)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _DocumentError(f"{_where(self.peek_event())}: nested deeper than {MAX_DEPTH} levels")
        self._count(1, self.peek_event())
        node = super().compose_node(parent, index)
        self._depth -= 1
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._sizes[id(child)] for child in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._sizes[id(key)] + self._sizes[id(value)] for key, value in node.value)
        self._sizes[id(node)] = size
        return node

    def _count(self, values: int, event: Any) -> None:
        self._total += values
        if self._total > MAX_NODES:
            raise _DocumentError(
                f"{_where(event)}: more than {MAX_NODES} values in the document, its aliases expanded "
                "(an alias may repeat a value, not multiply the document)"
            )


def _where(item: Any) -> str:
    mark = getattr(item, "start_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "the document"


if _C_EVENTS:

    class _Loader(_BoundedComposer, _EventSource, _JsonConstructor, _JsonResolver):
        def __init__(self, stream: str):
            _EventSource.__init__(self, stream)
            _BoundedComposer.__init__(self)
            _JsonConstructor.__init__(self)
            _JsonResolver.__init__(self)

else:  # pragma: no cover
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, _BoundedComposer, _JsonConstructor, _JsonResolver):  # type: ignore[no-redef]
        def __init__(self, stream: str):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _BoundedComposer.__init__(self)
            _JsonConstructor.__init__(self)
            _JsonResolver.__init__(self)
