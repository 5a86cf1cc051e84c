"""fastnn.save / fastnn.load: round trips (models of images included), optimizer state
(resuming training on rows and on images), atomic writes and every kind of damaged or
foreign file."""

import json
import os

import numpy as np
import pytest

import fastnn
from fastnn import persistence

LAYERS = {
    "Dense": lambda dt: fastnn.Dense(4, 4, rng=0, dtype=dt),
    "Dense(bias=False, l1, l2)": lambda dt: fastnn.Dense(
        4, 4, bias=False, l1=0.01, l2=0.02, rng=1, dtype=dt
    ),
    "ReLU": lambda dt: fastnn.ReLU(),
    "LeakyReLU": lambda dt: fastnn.LeakyReLU(0.2),
    "LeakyReLU(negative)": lambda dt: fastnn.LeakyReLU(-0.5),
    "Sigmoid": lambda dt: fastnn.Sigmoid(),
    "Tanh": lambda dt: fastnn.Tanh(),
    "Identity": lambda dt: fastnn.Identity(),
    "Softmax": lambda dt: fastnn.Softmax(),
    "BatchNorm1d": lambda dt: _trained_batchnorm(dt),
    "BatchNorm1d(affine=False)": lambda dt: fastnn.BatchNorm1d(
        4, affine=False, momentum=None, dtype=dt
    ),
    "Dropout": lambda dt: fastnn.Dropout(0.3, rng=0),
    "Maxout": lambda dt: fastnn.Maxout(4, 3, 2, rng=3, dtype=dt),
    "Standardize": lambda dt: fastnn.Standardize().adapt(
        np.random.default_rng(4).normal(2.0, 3.0, size=(50, 4))
    ),
}


def _trained_batchnorm(dtype, cls=fastnn.BatchNorm1d, shape=(8, 4)):
    """A batch norm whose running statistics and counter are not the initial ones."""
    bn = cls(4, momentum=0.2, dtype=dtype)
    for seed in range(3):
        bn.forward(np.random.default_rng(seed).normal(1.0, 2.0, size=shape), training=True)
    return bn


def assert_same_model(a, b):
    assert repr(a) == repr(b) and a.dtype == b.dtype
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype
        np.testing.assert_array_equal(sa[k], sb[k])
    for la, lb in zip(a, b):
        assert la.get_config() == lb.get_config()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_round_trip_every_layer_type(tmp_path, name, dtype):
    model = fastnn.Sequential(
        fastnn.Dense(3, 4, rng=2, dtype=dtype), LAYERS[name](dtype), dtype=dtype
    )
    path = tmp_path / "m.safetensors"
    fastnn.save(model, path)
    loaded = fastnn.load(path)
    assert_same_model(model, loaded)
    X = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_array_equal(model.predict(X), loaded.predict(X))


# Models of images (N, C, H, W): every image layer in a Sequential, with tuple and "same"
# arguments, trained a few steps so the weights and BatchNorm2d's running statistics and
# counter are not the initial ones.
CNNS = {
    "same-groups-maxpool": lambda dt: fastnn.Sequential(
        fastnn.Conv2d(3, 6, (3, 2), padding="same", dilation=(2, 1), groups=3, rng=0),
        fastnn.BatchNorm2d(6, momentum=0.2),
        fastnn.ReLU(),
        fastnn.MaxPool2d((3, 2), 1, (1, 0)),
        fastnn.AvgPool2d(2, padding=1, count_include_pad=False),
        fastnn.Flatten(),
        fastnn.Dense(6 * 5 * 4, 3, rng=1),
        dtype=dt,
    ),
    "valid-stride-avgpool": lambda dt: fastnn.Sequential(
        fastnn.Conv2d(3, 4, 3, stride=(2, 1), padding="valid", bias=False, rng=2),
        fastnn.LeakyReLU(0.1),
        fastnn.AvgPool2d((1, 2), stride=(1, 2)),
        fastnn.BatchNorm2d(4, affine=False, momentum=None),
        fastnn.Conv2d(4, 4, 2, padding=(1, 0), groups=4, rng=3),
        fastnn.Tanh(),
        fastnn.MaxPool2d(2, padding=1),
        fastnn.Flatten(),
        fastnn.Dropout(0.2, rng=0),
        fastnn.Dense(4 * 3 * 1, 3, rng=4),
        fastnn.Softmax(),
        dtype=dt,
    ),
}


def _images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3, 8, 7)), rng.integers(0, 3, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CNNS))
def test_round_trip_of_a_cnn(tmp_path, name, dtype):
    model = CNNS[name](dtype)
    X, y = _images()
    opt = fastnn.optim.SGD(model, lr=0.05, momentum=0.9)
    model.fit(X, y, loss=fastnn.SoftmaxCrossEntropy(), optimizer=opt, epochs=2, batch_size=4)
    path = tmp_path / "cnn.safetensors"
    fastnn.save(model, path)
    loaded = fastnn.load(path)
    assert_same_model(model, loaded)
    assert loaded.input_ndim == 4
    for layer in loaded:
        if isinstance(layer, fastnn.BatchNorm2d):
            assert int(layer.num_batches_tracked) == 4
    X_test = np.random.default_rng(1).normal(size=(5, 3, 8, 7))
    np.testing.assert_array_equal(model.predict(X_test), loaded.predict(X_test))


def test_every_registered_layer_is_covered():
    covered = {name.split("(")[0] for name in LAYERS}
    covered |= {type(layer).__name__ for make in CNNS.values() for layer in make(np.float32)}
    missing = set(fastnn.Layer.registry) - covered
    assert not missing, f"add these layers to LAYERS (or a model of CNNS): {sorted(missing)}"


def test_round_trip_of_an_image_layer_through_the_registry(tmp_path):
    """A layer of images (input_ndim 4) with a 4-D weight and a pair-valued setting saves
    and loads like any other: the file stores no input width or rank, the pair comes back
    from JSON as a list and the constructor makes it a pair again."""
    from fastnn.layers._spatial import pair

    saved = dict(fastnn.Layer.registry)
    try:

        class PatchFilter(fastnn.Layer):
            input_ndim = 4

            def __init__(self, channels, kernel_size=3, dtype=np.float32):
                super().__init__()
                self.channels, self.kernel_size = channels, pair(kernel_size, "kernel_size", 1)
                self.dtype = np.dtype(dtype)
                weight = np.arange(channels * channels * np.prod(self.kernel_size), dtype=dtype)
                self.weight = fastnn.Parameter(
                    "weight", weight.reshape(channels, channels, *self.kernel_size)
                )
                self._params["weight"] = self.weight

            def get_config(self):
                return {
                    "channels": self.channels,
                    "kernel_size": self.kernel_size,
                    "dtype": self.dtype.name,
                }

        model = fastnn.Sequential(
            PatchFilter(2, (2, 3)), fastnn.ReLU(), fastnn.Dropout(0.1), dtype=np.float64
        )
        model[0].weight.data *= -0.5
        path = tmp_path / "images.safetensors"
        fastnn.save(model, path)
        loaded = fastnn.load(path)
        assert_same_model(model, loaded)
        assert loaded[0].kernel_size == (2, 3)
        assert loaded.state_dict()["0.weight"].shape == (2, 2, 2, 3)
        raw = path.read_bytes()
        meta = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
        assert json.loads(meta["architecture"])[0] == {
            "class": "PatchFilter",
            "config": {"channels": 2, "kernel_size": [2, 3], "dtype": "float64"},
        }
    finally:
        fastnn.Layer.registry.clear()
        fastnn.Layer.registry.update(saved)


def test_trained_model_round_trip_and_file_layout(tmp_path):
    model = fastnn.Sequential(fastnn.Dense(3, 5, rng=0), fastnn.Tanh(), fastnn.Dense(5, 2, rng=1))
    path = tmp_path / "m.safetensors"
    fastnn.save(model, str(path))
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    assert (8 + n) % 8 == 0
    meta = header.pop("__metadata__")
    assert meta["format"] == "fastnn" and meta["format_version"] == "1"
    assert meta["dtype"] == "float32"
    assert [layer["class"] for layer in json.loads(meta["architecture"])] == [
        "Dense",
        "Tanh",
        "Dense",
    ]
    assert set(header) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert header["0.weight"] == {
        "dtype": "F32",
        "shape": [5, 3],
        "data_offsets": header["0.weight"]["data_offsets"],
    }
    assert b"pickle" not in raw and not raw[8 + n :].startswith(b"\x80")


def test_optimizer_state_round_trip_resumes_bit_exactly(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), rng.integers(0, 2, 64)
    loss = fastnn.SoftmaxCrossEntropy()

    def make():
        m = fastnn.Sequential(
            fastnn.Dense(3, 6, rng=0, dtype=np.float64),
            fastnn.ReLU(),
            fastnn.Dense(6, 2, rng=1, dtype=np.float64),
        )
        return m, fastnn.optim.SGD(m, lr=0.1, momentum=0.9, nesterov=True)

    straight, opt = make()
    straight.fit(X, y, loss=loss, optimizer=opt, epochs=1, seed=1)
    straight.fit(X, y, loss=loss, optimizer=opt, epochs=1, seed=2)

    first, opt1 = make()
    first.fit(X, y, loss=loss, optimizer=opt1, epochs=1, seed=1)
    fastnn.save(first, tmp_path / "ckpt.safetensors", optimizer=opt1)
    ckpt = fastnn.load_checkpoint(tmp_path / "ckpt.safetensors")
    resumed_opt = ckpt.make_optimizer()
    assert type(resumed_opt) is fastnn.optim.SGD and resumed_opt.hyper["nesterov"] is True
    ckpt.model.fit(X, y, loss=loss, optimizer=resumed_opt, epochs=1, seed=2)
    assert_same_model(straight, ckpt.model)

    # the state also loads into an optimizer the caller built
    other = fastnn.optim.SGD(ckpt.model, lr=0.5, momentum=0.9, nesterov=True)
    other.load_state_dict(fastnn.load_checkpoint(tmp_path / "ckpt.safetensors").optimizer_state)
    assert other.lr == 0.1 and other.steps == opt1.steps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_checkpoint_resumes_fit_on_images_bit_exactly(tmp_path, dtype):
    """Two epochs in one go, or one, a checkpoint (model and Adam's state) and one more from
    the file: the same CNN, BatchNorm2d's running statistics and counter included."""
    X, y = _images(12, seed=3)
    loss = fastnn.SoftmaxCrossEntropy()

    def make():
        m = CNNS["same-groups-maxpool"](dtype)
        return m, fastnn.optim.Adam(m, lr=0.01)

    straight, opt = make()
    straight.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=4, seed=1)
    straight.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=4, seed=2)

    first, opt1 = make()
    first.fit(X, y, loss=loss, optimizer=opt1, epochs=1, batch_size=4, seed=1)
    fastnn.save(first, tmp_path / "ckpt.safetensors", optimizer=opt1)
    ckpt = fastnn.load_checkpoint(tmp_path / "ckpt.safetensors")
    ckpt.model.fit(X, y, loss=loss, optimizer=ckpt.make_optimizer(), epochs=1, batch_size=4, seed=2)
    assert_same_model(straight, ckpt.model)
    np.testing.assert_array_equal(straight.predict(X), ckpt.model.predict(X))


def test_metadata_round_trip(tmp_path):
    model = fastnn.Sequential(fastnn.Dense(2, 2, rng=0))
    meta = {"classes": ["cat", "dog"], "n": 3, "nested": {"mean": np.array([1.5, 2.5])}}
    fastnn.save(model, tmp_path / "m.safetensors", metadata=meta)
    ckpt = fastnn.load_checkpoint(tmp_path / "m.safetensors")
    assert ckpt.metadata["classes"] == ["cat", "dog"] and ckpt.metadata["n"] == 3
    np.testing.assert_array_equal(ckpt.metadata["nested"]["mean"], [1.5, 2.5])
    assert ckpt.optimizer_state is None
    with pytest.raises(ValueError, match="no optimizer state"):
        ckpt.make_optimizer()
    with pytest.raises(TypeError, match="metadata"):
        fastnn.save(model, tmp_path / "x.safetensors", metadata={"f": object()})
    with pytest.raises(ValueError, match="non-finite"):
        fastnn.save(model, tmp_path / "x.safetensors", metadata={"f": float("nan")})


def test_save_rejects_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="Sequential"):
        fastnn.save(fastnn.Dense(2, 2), tmp_path / "m.safetensors")
    with pytest.raises(FileNotFoundError, match="no directory"):
        fastnn.save(fastnn.Sequential(fastnn.ReLU()), tmp_path / "nope" / "m.safetensors")


def test_safetensors_package_reads_fastnn_files(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    model = fastnn.Sequential(fastnn.Dense(3, 4, rng=0, dtype=np.float64), fastnn.ReLU())
    opt = fastnn.optim.SGD(model, lr=0.1, momentum=0.9)
    model.fit(np.ones((4, 3)), np.ones((4, 4)), loss=fastnn.MSELoss(), optimizer=opt)
    fastnn.save(model, tmp_path / "m.safetensors", optimizer=opt)
    tensors = st.load_file(str(tmp_path / "m.safetensors"))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(tensors[k], v)
    # and fastnn reads what the package writes, given fastnn's metadata
    raw = (tmp_path / "m.safetensors").read_bytes()
    meta = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
    st.save_file(
        model.state_dict(),
        str(tmp_path / "theirs.safetensors"),
        metadata={k: v for k, v in meta.items() if k != "optimizer"},
    )
    assert_same_model(model, fastnn.load(tmp_path / "theirs.safetensors"))


# ---- atomic writes ------------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", ["write", "fsync", "replace"])
def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch, fail_at):
    path = tmp_path / "m.safetensors"
    old = fastnn.Sequential(fastnn.Dense(2, 3, rng=0))
    fastnn.save(old, path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(f"simulated failure in {fail_at}")

    new = fastnn.Sequential(fastnn.Dense(2, 3, rng=1), fastnn.ReLU())
    if fail_at == "write":
        real_serialize = persistence._serialize

        def half(tensors, meta):  # the second tensor's bytes cannot be produced
            header, arrays = real_serialize(tensors, meta)

            class Broken:
                @property
                def data(self):
                    boom()

            return header, arrays[:1] + [Broken()]

        monkeypatch.setattr(persistence, "_serialize", half)
    else:
        monkeypatch.setattr(os, fail_at, boom)
    with pytest.raises(OSError, match="simulated"):
        fastnn.save(new, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]  # no temporary file left behind
    monkeypatch.undo()
    assert_same_model(old, fastnn.load(path))


# ---- damaged and foreign files ---------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    model = fastnn.Sequential(fastnn.Dense(3, 4, rng=0), fastnn.ReLU(), fastnn.Dense(4, 2, rng=1))
    path = tmp_path / "m.safetensors"
    fastnn.save(model, path, optimizer=fastnn.optim.SGD(model, lr=0.1))
    return path


def split(path):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write(path, header, body):
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + body)


@pytest.mark.parametrize("keep", [0, 5, 8, 20, "half-header", "header", "-1"])
def test_truncated_files(saved, keep):
    raw = saved.read_bytes()
    n = 8 + int.from_bytes(raw[:8], "little")
    size = {"half-header": n // 2, "header": n, "-1": len(raw) - 1}.get(keep, keep)
    saved.write_bytes(raw[:size])
    with pytest.raises(ValueError, match="truncated|header length|too short"):
        fastnn.load(saved)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        b'{"weights": [1, 2, 3]}',
        b"x" * 64,
        (10).to_bytes(8, "little") + b"not json!!",
        (4).to_bytes(8, "little") + b"[1] ",
    ],
)
def test_foreign_files(tmp_path, content):
    path = tmp_path / "foreign.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a fastnn model file|bad header|too short"):
        fastnn.load(path)


def mutate(saved, fn):
    header, body = split(saved)
    result = fn(header, body)
    write(saved, header, result if isinstance(result, bytes) else body)


CASES = {
    "no fastnn metadata": (lambda h, b: h.pop("__metadata__"), "not a fastnn model file"),
    "foreign format": (lambda h, b: h["__metadata__"].update(format="other"), "not a fastnn"),
    "newer version": (
        lambda h, b: h["__metadata__"].update(format_version="2"),
        "format version 2.*upgrade fastnn",
    ),
    "bad version": (lambda h, b: h["__metadata__"].update(format_version="one"), "format_version"),
    "metadata not strings": (lambda h, b: h["__metadata__"].update(x=1), "strings to strings"),
    "unknown layer": (
        lambda h, b: h["__metadata__"].update(
            architecture=json.dumps([{"class": "os.system", "config": {"command": "echo hi"}}])
        ),
        "unknown layer class",
    ),
    "private layer": (
        lambda h, b: h["__metadata__"].update(
            architecture=json.dumps([{"class": "_Activation", "config": {}}])
        ),
        "unknown layer class",
    ),
    "bad config": (
        lambda h, b: h["__metadata__"].update(
            architecture=json.dumps(
                [
                    {"class": "Dense", "config": {"in_features": 3, "out_features": 4, "evil": 1}},
                    {"class": "ReLU", "config": {}},
                    {"class": "Dense", "config": {"in_features": 4, "out_features": 2}},
                ]
            )
        ),
        "cannot rebuild",
    ),
    "architecture not JSON": (
        lambda h, b: h["__metadata__"].update(architecture="[{"),
        "not valid JSON",
    ),
    "no architecture": (lambda h, b: h["__metadata__"].pop("architecture"), "architecture"),
    "wrong dtype": (lambda h, b: h["0.bias"].update(dtype="I32"), "needs float32"),
    "unknown dtype": (lambda h, b: h["0.bias"].update(dtype="F8"), "unknown dtype"),
    "wrong shape": (lambda h, b: h["0.weight"].update(shape=[3, 4]), "needs float32 \\(4, 3\\)"),
    "shape vs bytes": (lambda h, b: h["0.weight"].update(shape=[4, 4]), "needs 64 bytes"),
    "negative shape": (lambda h, b: h["0.weight"].update(shape=[-4, -3]), "invalid shape"),
    "offsets out of range": (
        lambda h, b: h["2.bias"].update(data_offsets=[len(b) - 4, len(b) + 4]),
        "overlap or leave a gap|describes",
    ),
    "overlapping offsets": (
        lambda h, b: h["0.bias"].update(
            data_offsets=list(h["0.weight"]["data_offsets"][:1])
            + [h["0.weight"]["data_offsets"][0] + 16]
        ),
        "overlap or leave a gap",
    ),
    "reversed offsets": (
        lambda h, b: h["0.bias"].update(data_offsets=h["0.bias"]["data_offsets"][::-1]),
        "invalid data_offsets",
    ),
    "missing tensor": (
        lambda h, b: h.pop("2.bias") and b[: h["2.weight"]["data_offsets"][1]],
        "lacks the model's tensors \\['2.bias'\\]",
    ),
    "extra fields": (lambda h, b: h["0.bias"].update(extra=1), "exactly dtype"),
    "trailing bytes": (lambda h, b: b + b"\0" * 8, "trailing bytes"),
    "dangling optimizer reference": (
        lambda h, b: h["__metadata__"].update(
            optimizer=json.dumps(
                {"type": "SGD", "state": [{"momentum_buffer": {"__tensor__": "nope"}}]}
            )
        ),
        "optimizer state",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_headers(saved, case):
    fn, message = CASES[case]
    mutate(saved, fn)
    with pytest.raises(ValueError, match=message):
        fastnn.load(saved)


def test_duplicate_header_keys_are_rejected(saved):
    raw = saved.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    text = raw[8 : 8 + n].rstrip()
    text = text[:-1] + b',"__metadata__":{"format":"fastnn"}}'
    saved.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])
    with pytest.raises(ValueError, match="duplicate"):
        fastnn.load(saved)


def test_error_messages_name_the_file(saved):
    saved.write_bytes(b"junk")
    with pytest.raises(ValueError, match=str(saved.name)):
        fastnn.load(saved)
