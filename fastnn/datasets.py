"""The built-in handwritten-digits dataset.

Optical Recognition of Handwritten Digits (UCI), the 1,797-sample copy distributed with
scikit-learn. Creators: E. Alpaydin and C. Kaynak, 1998. Licensed CC BY 4.0 (see
``fastnn/data/README.md``)."""
import gzip
from importlib import resources

import numpy as np

__all__ = ["load_digits"]


def load_digits():
    """``(X, y)``: X float32 (1797, 64) with pixel intensities 0..16 of 8x8 images (row-major),
    y int64 labels 0..9."""
    with resources.files("fastnn").joinpath("data/digits.csv.gz").open("rb") as raw:
        with gzip.open(raw, "rt") as text:
            data = np.loadtxt(text, delimiter=",", dtype=np.int64)
    return data[:, :64].astype(np.float32), data[:, 64].copy()
