"""The layer protocol (fastnn/layers/base.py): get_config rebuilds a layer, through the
registry, with the same repr, state and parameters; the registry finds a layer defined
later, by its exact name."""

import json

import numpy as np
import pytest

import fastnn
from fastnn import BatchNorm1d, Dropout, Maxout, Standardize

LAYERS = [
    lambda: Dropout(0.2),
    lambda: BatchNorm1d(4, eps=1e-3, momentum=None, affine=False, dtype=np.float64),
    lambda: BatchNorm1d(4),
    lambda: Maxout(4, 3, 2, bias=False),
    lambda: Standardize(mean=[0, 1, 2, 3], std=[1, 1, 2, 2]),
    lambda: Standardize(),
]


@pytest.mark.parametrize("make", LAYERS)
def test_get_config_rebuilds_the_layer(make):
    layer = make()
    config = layer.get_config()
    json.dumps(config)
    clone = fastnn.layers.get(type(layer).__name__)(**config)
    assert repr(clone) == repr(layer)
    assert {k: v.shape for k, v in clone.state_dict().items()} == {
        k: v.shape for k, v in layer.state_dict().items()
    }
    assert [p.data.shape for p in clone.parameters()] == [p.data.shape for p in layer.parameters()]


def test_the_layer_registry_finds_user_layers_by_exact_name():
    """fastnn.layers.get reads Layer.registry when called, so a layer defined later is found
    (and an elementwise one by get_activation too)."""
    saved = dict(fastnn.Layer.registry)
    try:

        class Swish(fastnn.layers._Activation):
            kernel_name = "sigmoid"

        assert fastnn.layers.get("Swish") is Swish
        assert fastnn.layers.get_activation("swish") is Swish
        with pytest.raises(ValueError, match="unknown layer class 'swish'"):
            fastnn.layers.get("swish")
    finally:
        fastnn.Layer.registry.clear()
        fastnn.Layer.registry.update(saved)
