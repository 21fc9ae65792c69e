"""Property-based tests of the two text parsers users feed by hand: split lines and calibration files.

Valid generated input must round-trip exactly; generated input with one damaged line must raise a
ValueError that names the file and the damaged line's number (never a bare int()/float() error).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mldanet.data.calibration import read_calib_file
from mldanet.data.splits import parse_split_line, read_lines_file

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Printable characters that are neither whitespace nor line breaks to str.split()/splitlines().
TOKEN_CHARS = st.characters(blacklist_categories=("Z", "C"))
token = st.text(TOKEN_CHARS, min_size=1, max_size=12)
folder_part = st.text(TOKEN_CHARS.filter(lambda c: c != "/"), min_size=1, max_size=12)
gap = st.text(" \t", min_size=1, max_size=3)
edge = st.text(" \t", max_size=2)


@st.composite
def split_lines(draw):
    """(line, (folder, frame, side)) with arbitrary spacing around and between the fields."""
    folder = f"{draw(folder_part)}/{draw(folder_part)}"
    frame = draw(st.integers(0, 10**10))
    side = draw(st.sampled_from("lr"))
    padded = draw(st.text("0", max_size=3)) + str(frame)  # KITTI-style zero padding is allowed
    line = f"{draw(edge)}{folder}{draw(gap)}{padded}{draw(gap)}{side}{draw(edge)}"
    return line, (folder, frame, side)


def not_ascii_digits(text: str) -> bool:
    return not (text.isascii() and text.isdigit())


@st.composite
def malformed_split_lines(draw):
    folder, frame, side = f"{draw(folder_part)}/{draw(folder_part)}", str(draw(st.integers(0, 999))), draw(st.sampled_from("lr"))
    kind = draw(st.sampled_from(["fields", "folder", "frame", "side"]))
    if kind == "fields":
        fields = draw(st.lists(token, max_size=6).filter(lambda f: len(f) != 3))
        return " ".join(fields) if fields else draw(st.text(" \t", min_size=1, max_size=3)) + "x"
    if kind == "folder":
        folder = draw(st.one_of(
            folder_part,  # no slash
            st.builds(lambda a, b, c: f"{a}/{b}/{c}", folder_part, folder_part, folder_part),
            folder_part.map(lambda a: f"/{a}"),
            folder_part.map(lambda a: f"{a}/"),
        ))
    elif kind == "frame":
        frame = draw(token.filter(not_ascii_digits))
    else:
        side = draw(token.filter(lambda t: t not in ("l", "r")))
    return f"{folder} {frame} {side}"


@SETTINGS
@given(split_lines())
def test_valid_split_lines_parse_back_to_their_fields(generated):
    line, fields = generated
    assert parse_split_line(line) == fields


@SETTINGS
@given(st.lists(split_lines(), min_size=1, max_size=8), st.data())
def test_split_file_round_trips_and_a_damaged_line_is_named(generated, data):
    lines = [line for line, _ in generated]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train_files.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert read_lines_file(path) == [line.strip() for line in lines]
        assert [parse_split_line(line) for line in read_lines_file(path)] == [fields for _, fields in generated]

        where = data.draw(st.integers(0, len(lines)))
        bad = data.draw(malformed_split_lines())
        damaged = lines[:where] + [bad] + lines[where:]
        path.write_text("\n".join(damaged) + "\n", encoding="utf-8")
        with pytest.raises(ValueError, match=re.escape(f"{path}:{where + 1}: ")):
            read_lines_file(path)


calib_key = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
number = st.floats(allow_nan=False, width=64)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# Words that float() refuses ("inf", "nan", "1e5", "1_0" are numbers to it), like KITTI's calib_time.
text_word = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzJ-:."), min_size=1, max_size=10).filter(lambda t: not is_number(t))


@st.composite
def calibration_files(draw):
    """(text, {key: values}) with number entries in any float notation and ignorable text entries."""
    entries = draw(st.dictionaries(calib_key, st.lists(number, max_size=12), min_size=1, max_size=8))
    text_keys = draw(st.lists(calib_key.filter(lambda k: k not in entries), max_size=2, unique=True))
    lines = [f"{key}:{' ' if values else ''}{' '.join(draw(st.sampled_from([repr, str, lambda v: f'{v:.17e}']))(v) for v in values)}"
             for key, values in entries.items()]
    lines += [f"{key}: {' '.join(draw(st.lists(text_word, min_size=1, max_size=3)))}" for key in text_keys]
    lines = draw(st.permutations(lines))
    return lines, entries


@st.composite
def malformed_calibration_lines(draw):
    kind = draw(st.sampled_from(["no colon", "no key", "mixed"]))
    if kind == "no colon":
        return draw(st.text(TOKEN_CHARS.filter(lambda c: c != ":"), min_size=1, max_size=20))
    if kind == "no key":
        return f"{draw(st.text(' ', max_size=2))}: {' '.join(map(repr, draw(st.lists(number, max_size=3))))}"
    values = [repr(v) for v in draw(st.lists(number, min_size=1, max_size=5))]
    values.insert(draw(st.integers(0, len(values))), draw(text_word))
    return f"{draw(calib_key)}: {' '.join(values)}"


@SETTINGS
@given(calibration_files(), st.data())
def test_calibration_file_round_trips_and_a_damaged_line_is_named(generated, data):
    lines, entries = generated
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "calib_cam_to_cam.txt"
        path.write_text("\n".join(lines) + "\n")
        parsed = read_calib_file(path)
        assert set(parsed) == set(entries)  # the text entries are left out
        for key, values in entries.items():
            assert parsed[key].dtype == np.float64
            np.testing.assert_array_equal(parsed[key], np.array(values, dtype=np.float64))

        where = data.draw(st.integers(0, len(lines)))
        damaged = lines[:where] + [data.draw(malformed_calibration_lines())] + lines[where:]
        path.write_text("\n".join(damaged) + "\n")
        with pytest.raises(ValueError, match=re.escape(f"{path}:{where + 1}: ")):
            read_calib_file(path)
