"""The datasets (fastnn/datasets.py): fastnn.load_mnist on small IDX files written here (raw
and gzipped, both spellings, damaged in every way the loader must catch), and one slow test
on the real MNIST files, found through FASTNN_MNIST_DIR or next to the repository
(../shared/data/mnist)."""

import gzip
import os
import pathlib

import numpy as np
import pytest

import fastnn
from helpers import mnist_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEMS = {"train-images": 3, "train-labels": 1, "t10k-images": 3, "t10k-labels": 1}


def idx(magic, shape, values=b""):
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape) + bytes(values)


def file_name(stem, spelling="-", gz=False):
    return f"{stem}{spelling}idx{STEMS[stem]}-ubyte" + (".gz" if gz else "")


def write(path, data, gz=False):
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def write_mnist(directory, n_train=5, n_test=3, spelling="-", gz=False, seed=0):
    """Four consistent IDX files; returns the arrays they hold."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        X = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        write(
            directory / file_name(f"{prefix}-images", spelling, gz),
            idx(2051, (n, 28, 28), X.tobytes()),
            gz,
        )
        write(
            directory / file_name(f"{prefix}-labels", spelling, gz),
            idx(2049, (n,), y.tobytes()),
            gz,
        )
        arrays[prefix] = (X, y)
    return arrays


def check_loaded(result, arrays):
    (X_tr, y_tr), (X_te, y_te) = result
    for (X, y), prefix in (((X_tr, y_tr), "train"), ((X_te, y_te), "t10k")):
        assert X.dtype == np.uint8 and y.dtype == np.int64
        assert X.shape == (len(arrays[prefix][0]), 28, 28) and y.shape == (len(X),)
        np.testing.assert_array_equal(X, arrays[prefix][0])
        np.testing.assert_array_equal(y, arrays[prefix][1])
        assert X.flags.writeable and X.flags.c_contiguous


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("spelling", ["-", "."], ids=["idx3-dash", "idx3-dot"])
def test_loads_raw_and_gzipped_in_both_spellings(tmp_path, spelling, gz):
    arrays = write_mnist(tmp_path, spelling=spelling, gz=gz)
    check_loaded(fastnn.load_mnist(str(tmp_path)), arrays)
    check_loaded(fastnn.load_mnist(pathlib.Path(tmp_path)), arrays)


def test_mixed_files_and_raw_preferred_over_gz(tmp_path):
    arrays = write_mnist(tmp_path, gz=True)
    # Unpack one file beside its .gz (as `gunzip -k` leaves it), rename another to the dotted
    # spelling: the raw copy is read, and spellings may differ between files.
    raw = tmp_path / file_name("train-images")
    raw.write_bytes(gzip.decompress((tmp_path / (raw.name + ".gz")).read_bytes()))
    write(tmp_path / (raw.name + ".gz"), b"not read")  # would fail if it were read
    (tmp_path / file_name("t10k-labels", gz=True)).rename(
        tmp_path / file_name("t10k-labels", ".", gz=True)
    )
    check_loaded(fastnn.load_mnist(tmp_path), arrays)


def test_empty_sets_load(tmp_path):
    arrays = write_mnist(tmp_path, n_train=0, n_test=0)
    check_loaded(fastnn.load_mnist(tmp_path), arrays)


def test_missing_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no directory .*nowhere"):
        fastnn.load_mnist(tmp_path / "nowhere")
    write(tmp_path / "plain", b"")
    with pytest.raises(NotADirectoryError, match="plain"):
        fastnn.load_mnist(tmp_path / "plain")
    write_mnist(tmp_path)
    os.remove(tmp_path / file_name("t10k-labels"))
    with pytest.raises(FileNotFoundError) as err:
        fastnn.load_mnist(tmp_path)
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte" in message and "t10k-labels.idx1-ubyte.gz" in message
    assert str(tmp_path) in message


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_truncated_file(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    name = file_name("train-images", gz=gz)
    data = idx(2051, (5, 28, 28), bytes(5 * 784 - 100))
    write(tmp_path / name, data, gz)
    with pytest.raises(ValueError, match=r"truncated.*5 images \(3920 bytes.*has 3820") as err:
        fastnn.load_mnist(tmp_path)
    assert name in str(err.value)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_extra_bytes_after_the_data(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    name = file_name("t10k-labels", gz=gz)
    write(tmp_path / name, idx(2049, (3,), bytes(3 + 7)), gz)
    with pytest.raises(ValueError, match=r"7 bytes more than the 3 labels") as err:
        fastnn.load_mnist(tmp_path)
    assert name in str(err.value)


def test_truncated_gzip_stream(tmp_path):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / file_name("train-images", gz=True)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: damaged or truncated gzip"):
        fastnn.load_mnist(tmp_path)


@pytest.mark.parametrize(
    "data", [b"", b"\x00\x00\x08", idx(2051, (5, 28))], ids=["empty", "3 bytes", "half header"]
)
def test_truncated_header(tmp_path, data):
    write_mnist(tmp_path)
    write(tmp_path / file_name("train-images"), data)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: truncated"):
        fastnn.load_mnist(tmp_path)


def test_wrong_magic_numbers(tmp_path):
    write_mnist(tmp_path)
    images = tmp_path / file_name("train-images")
    labels = tmp_path / file_name("train-labels")
    original = images.read_bytes()
    images.write_bytes(labels.read_bytes())  # a label file where the images should be
    with pytest.raises(
        ValueError,
        match=r"train-images-idx3-ubyte: not an MNIST images file: "
        r"magic number 2049 .*expected 2051.*IDX labels file",
    ):
        fastnn.load_mnist(tmp_path)
    images.write_bytes(original)
    labels.write_bytes(b"label,pixel0\n3,0\n" * 10)  # a CSV
    with pytest.raises(
        ValueError,
        match=r"train-labels-idx1-ubyte: not an MNIST labels file: "
        r"magic number \d+ \(0x6c616265\), expected 2049",
    ):
        fastnn.load_mnist(tmp_path)


def test_foreign_gzip_files(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / file_name("t10k-images")
    data = path.read_bytes()
    # gzip-compressed but named without .gz: said so
    path.write_bytes(gzip.compress(data))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte: .*gzip-compressed"):
        fastnn.load_mnist(tmp_path)
    # named .gz but not gzip
    os.remove(path)
    write(tmp_path / (path.name + ".gz"), data)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: damaged or truncated gzip"):
        fastnn.load_mnist(tmp_path)


def test_wrong_image_size(tmp_path):
    write_mnist(tmp_path)
    write(tmp_path / file_name("t10k-images"), idx(2051, (3, 32, 32), bytes(3 * 1024)))
    with pytest.raises(
        ValueError,
        match=r"t10k-images-idx3-ubyte: images are 32x32 pixels, "
        r"expected 28x28",
    ):
        fastnn.load_mnist(tmp_path)


def test_image_and_label_counts_must_agree(tmp_path):
    write_mnist(tmp_path)
    write(tmp_path / file_name("train-labels"), idx(2049, (4,), bytes(4)))
    with pytest.raises(
        ValueError,
        match=r"train-images-idx3-ubyte holds 5 images but "
        r".*train-labels-idx1-ubyte holds 4 labels",
    ):
        fastnn.load_mnist(tmp_path)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_a_lying_header_does_not_allocate_its_claim(tmp_path, gz):
    """A header claiming 2**32-1 images (3.4 TB) over a few bytes is refused from the file
    size, before any allocation."""
    write_mnist(tmp_path, gz=gz)
    write(
        tmp_path / file_name("train-images", gz=gz), idx(2051, (2**32 - 1, 28, 28), bytes(784)), gz
    )
    with pytest.raises(ValueError, match="truncated: the header declares 4294967295 images"):
        fastnn.load_mnist(tmp_path)


# ----------------------------------------------------------------------------------------
# The real files
# ----------------------------------------------------------------------------------------

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.slow
def test_real_mnist_loads_and_trains():
    (X_train, y_train), (X_test, y_test) = fastnn.load_mnist(mnist_dir())
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert X_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert X_train.max() == 255 and X_train.min() == 0

    X_tr = X_train.reshape(len(X_train), -1).astype(np.float32) / 255
    X_te = X_test.reshape(len(X_test), -1).astype(np.float32) / 255
    # One epoch of the benchmark's 784-256-256-10 (Adam, batch 128): 96.4-96.7% over seeds.
    model = fastnn.Sequential(
        fastnn.Dense(784, 256, rng=0),
        fastnn.ReLU(),
        fastnn.Dense(256, 256, rng=1),
        fastnn.ReLU(),
        fastnn.Dense(256, 10, rng=2),
    )
    loss = fastnn.SoftmaxCrossEntropy()
    model.fit(
        X_tr,
        y_train,
        loss=loss,
        optimizer=fastnn.optim.Adam(model, lr=1e-3),
        epochs=1,
        batch_size=128,
        seed=0,
    )
    accuracy = model.evaluate(X_te, y_test, loss=loss, metrics=("accuracy",))["accuracy"]
    assert accuracy >= 0.95, accuracy
