"""A spec document is read with bounded cost (spec/document.py): plain JSON data or a problem naming where."""

from __future__ import annotations

import time

import pytest

from sweep_service.spec import SpecError, read_json, read_yaml, source_lines
from sweep_service.spec.document import MAX_DEPTH, MAX_INTEGER, MAX_NODES


def refused(read, text) -> tuple[str, str]:
    with pytest.raises(SpecError) as caught:
        read(text)
    problem = caught.value.problems[0]
    return problem.path, problem.msg


def test_what_yaml_may_say():
    text = "base: &b {lr: 0.1}\nx: {<<: *b, y: 1}\nshared: &s [1, 2]\nagain: *s\nwhen: 2020-01-01\nhex: 0x1F\n"
    assert read_yaml(text) == {
        "base": {"lr": 0.1},
        "x": {"lr": 0.1, "y": 1},  # merge keys fold in
        "shared": [1, 2],
        "again": [1, 2],  # an alias repeats a value
        "when": "2020-01-01",  # a date stays a string, as in JSON
        "hex": 31,
    }
    assert read_json('{"a": "\\ud83d\\ude00", "b": [1.5, null, true]}') == {"a": "😀", "b": [1.5, None, True]}


def test_an_alias_bomb_is_refused_before_it_expands():
    anchors = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
        f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)
    ]
    text = "x: [" + ", ".join(anchors) + "]"  # 10^12 values once expanded, 500 bytes
    started = time.perf_counter()
    _, msg = refused(read_yaml, text)
    assert time.perf_counter() - started < 0.5
    assert f"more than {MAX_NODES} values" in msg and "alias" in msg
    assert "refers to itself" in refused(read_yaml, "a: &x [1, *x]")[1]


def test_source_lines_name_each_fields_line_within_the_same_bounds():
    """The CLI's `FILE:LINE` comes from the same bounded composer: a document it refuses (an alias bomb) has no
    lines, at once, rather than a walk through every expansion; a key that is not a string is skipped."""
    text = "name: x\nsearch:\n  num_samples: 3\nalgorithm: [bp, fa]\n"
    lines = source_lines(text)
    assert lines[("search", "num_samples")] == 3 and lines[("algorithm", 1)] == 4 and lines[("search",)] == 2
    bomb = "\n".join(
        ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
        + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    )
    started = time.perf_counter()
    assert source_lines(bomb) == {}
    assert time.perf_counter() - started < 0.5
    assert source_lines("? [1]\n: 2\nname: x\n")[("name",)] == 3


@pytest.mark.parametrize(
    ("read", "text", "path", "words"),
    [
        (read_yaml, "x: " + "[" * 100 + "]" * 100, "", f"deeper than {MAX_DEPTH}"),
        (read_json, "[" * 5000 + "]" * 5000, "", f"deeper than {MAX_DEPTH}"),
        (read_json, '{"a": ' * 40 + "1" + "}" * 40, "a" + ".a" * (MAX_DEPTH - 1), f"deeper than {MAX_DEPTH}"),
        (read_json, f'{{"n": {MAX_INTEGER + 1}}}', "n", "integer beyond"),
        (read_yaml, f"n: -{10**309}", "n", "integer beyond"),
        (read_json, '{"x": [1e309]}', "x[0]", "finite"),
        (read_json, '{"x": NaN}', "x", "finite"),
        (read_yaml, "x: .inf", "x", "finite"),
        (read_yaml, "x: !!binary aGVsbG8=", "", "binary"),
        (read_yaml, "x: !!timestamp 2020-01-01", "", "timestamp"),
        (read_yaml, "x: !!python/object:os.system {}", "", "python/object"),
        (read_yaml, "x: !local 1", "", "!local"),
        (read_yaml, "x: !!bool maybe", "", "KeyError"),
        (read_yaml, "{1: 2}", "", "key must be a string"),
        (read_json, '{"d": "a\\udc80"}', "d", "lone surrogate"),
        (read_yaml, 'd: "a\\ud800"', "", "escape"),
        (read_json, b'{"d": "\xed\xa0\x80"}', "", "not UTF-8"),
        (read_json, '{"l": [' + ", ".join(["0"] * MAX_NODES) + "]}", "l", f"more than {MAX_NODES} values"),
        (read_yaml, "l: [" + ", ".join(["0"] * MAX_NODES) + "]", "", f"more than {MAX_NODES} values"),
    ],
)
def test_refused_with_where_and_why(read, text, path, words):
    found_path, msg = refused(read, text)
    assert found_path == path and words in msg, (found_path, msg)
    assert len(msg) < 400
