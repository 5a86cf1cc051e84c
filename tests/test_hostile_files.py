"""Hostile model files beyond test_persistence's damaged headers: every single-bit flip and
every truncation of a saved file loads or raises ValueError (never another exception, never
a crash, never a huge allocation); absurd header lengths and shapes; JSON bombs; and a file
whose weights are NaN loads but refuses to predict."""

import json

import numpy as np
import pytest

import fastnn


@pytest.fixture
def saved(tmp_path):
    model = fastnn.Sequential(fastnn.Dense(3, 4, rng=0), fastnn.ReLU(), fastnn.Dense(4, 2, rng=1))
    path = tmp_path / "m.fnn"
    fastnn.save(model, path)
    return path


def _load_or_valueerror(path):
    """None if the file loaded (then the model must work), else the ValueError's text."""
    try:
        model = fastnn.load(path)
    except ValueError as exc:
        return str(exc)
    out = (
        model.predict(np.ones((2, model.in_features or 3)))
        if model.nonfinite_state() is None
        else None
    )
    assert out is None or out.shape[0] == 2
    return None


def test_every_bit_flip_loads_or_raises_valueerror(saved):
    raw = bytearray(saved.read_bytes())
    # Every bit of the length prefix and header, and a stride through the weights.
    n = 8 + int.from_bytes(raw[:8], "little")
    positions = list(range(n)) + list(range(n, len(raw), 7))
    outcomes = {"loaded": 0, "refused": 0}
    for pos in positions:
        for bit in range(8):
            raw[pos] ^= 1 << bit
            saved.write_bytes(bytes(raw))
            outcomes["refused" if _load_or_valueerror(saved) else "loaded"] += 1
            raw[pos] ^= 1 << bit
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 8 * len(positions)


def test_every_truncation_raises_valueerror(saved):
    raw = saved.read_bytes()
    for size in range(len(raw)):
        saved.write_bytes(raw[:size])
        with pytest.raises(ValueError):
            fastnn.load(saved)


@pytest.mark.parametrize("length", [2**63 - 1, 2**64 - 1, 2**40, 10**9])
def test_huge_header_length_is_refused_without_allocating(saved, length):
    raw = saved.read_bytes()
    saved.write_bytes(length.to_bytes(8, "little") + raw[8:])
    with pytest.raises(ValueError, match="header length|truncated|too short"):
        fastnn.load(saved)


def _rewrite_header(path, edit):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    text = edit(header)
    if not isinstance(text, bytes):
        text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])


@pytest.mark.parametrize(
    "text",
    ids=["deep-list", "deep-dict", "huge-exponent", "NaN", "not-utf8", "string", "null"],
    argvalues=[
        b"[" * 100000 + b"]" * 100000,  # nesting deeper than the recursion limit
        b'{"a":' * 50000 + b"1" + b"}" * 50000,
        b'{"__metadata__": {"format": "fastnn", "format_version": "1e999999"}}',
        b'{"__metadata__": NaN}',
        b"\xff\xfe\x00\x00",  # not UTF-8
        b'"just a string"',
        b"null",
    ],
)
def test_json_bombs_and_oddities(saved, text):
    _rewrite_header(saved, lambda h: text)
    with pytest.raises(ValueError):
        fastnn.load(saved)


@pytest.mark.parametrize(
    "shape", [[2**62, 2**62], [2**31, 2**31, 2**31], [1e300], ["4"], [None], [True, 3], 5, "4,3"]
)
def test_absurd_shapes(saved, shape):
    _rewrite_header(saved, lambda h: h["0.weight"].update(shape=shape))
    with pytest.raises(ValueError):
        fastnn.load(saved)


@pytest.mark.parametrize(
    "offsets", [[0, 2**64], [-8, 40], [2**63, 2**63 + 48], [0], "0-48", [0.0, 48.0], None]
)
def test_absurd_offsets(saved, offsets):
    _rewrite_header(saved, lambda h: h["0.weight"].update(data_offsets=offsets))
    with pytest.raises(ValueError):
        fastnn.load(saved)


def test_deeply_nested_architecture_is_refused(saved):
    _rewrite_header(saved, lambda h: h["__metadata__"].update(architecture="[" * 100000))
    with pytest.raises(ValueError, match="nested too deeply"):
        fastnn.load(saved)


def test_nan_weights_load_but_refuse_to_predict(saved):
    model = fastnn.load(saved)
    state = model.state_dict()
    state["2.weight"][0, 0] = np.nan
    model.load_state_dict(state)
    fastnn.save(model, saved)
    loaded = fastnn.load(saved)
    assert loaded.nonfinite_state() == "2.weight"
    with pytest.raises(FloatingPointError, match="'2.weight' contains NaN"):
        loaded.predict(np.ones((1, 3)))


def test_load_never_unpickles(saved, monkeypatch):
    import pickle

    def forbidden(*args, **kwargs):
        raise AssertionError("load used pickle")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    assert fastnn.load(saved).predict(np.ones((1, 3))).shape == (1, 2)
