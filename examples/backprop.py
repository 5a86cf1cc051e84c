"""Backpropagation by hand (lecture notes P13): a 2-2-2 sigmoid network on one input.

The forward pass is printed neuron by neuron (z, a); the backward pass runs the closed-form
delta recursion by hand and is compared with fastnn's parameter gradients after
``model.backward`` and with central differences of the loss.

    python examples/backprop.py [--quick] [--out DIR]
"""

import argparse

import numpy as np

import fastnn

# The notes' worked example: x = (1, -1) through weights (1, -2 / -1, 1) and biases (1, 0).
W1, B1 = np.array([[1.0, -2.0], [-1.0, 1.0]]), np.array([1.0, 0.0])
W2, B2 = np.array([[2.0, -1.0], [-2.0, -1.0]]), np.array([0.0, 0.0])
X, T = np.array([[1.0, -1.0]]), np.array([[1.0, 0.0]])


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def build():
    model = fastnn.Sequential(
        fastnn.Dense(2, 2), fastnn.Sigmoid(), fastnn.Dense(2, 2), fastnn.Sigmoid(), dtype=np.float64
    )
    for layer, w, b in ((model[0], W1, B1), (model[2], W2, B2)):
        layer.weight.data[...] = w
        layer.bias.data[...] = b
    return model


def numeric_grads(model, loss, eps=1e-6):
    """Central differences of the loss for every parameter entry, one entry at a time."""
    grads = {}
    for p in model.parameters():
        g = np.zeros_like(p.data)
        for i in np.ndindex(p.data.shape):
            keep = p.data[i]
            p.data[i] = keep + eps
            up = loss(model.forward(X), T)[0]
            p.data[i] = keep - eps
            down = loss(model.forward(X), T)[0]
            p.data[i] = keep
            g[i] = (up - down) / (2 * eps)
        grads[p.name] = g
    return grads


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry; always fast")
    parser.add_argument("--out", default=".", help="unused: this example draws no figure")
    parser.parse_args(argv)

    # half_sum makes dC/da = a - t, the notes' form of the output error.
    loss = fastnn.MSELoss("half_sum")
    model = build()

    # Forward by hand.
    z1 = W1 @ X[0] + B1
    a1 = sigmoid(z1)
    z2 = W2 @ a1 + B2
    a2 = sigmoid(z2)
    print("forward pass, x =", X[0])
    for name, z, a in (("layer 1", z1, a1), ("layer 2", z2, a2)):
        for j in range(2):
            print(f"  {name} neuron {j + 1}: z = {z[j]:+.6f}  a = sigmoid(z) = {a[j]:.6f}")

    # Backward by hand: sigma'(z) = a (1 - a) for the sigmoid.
    d2 = (a2 - T[0]) * a2 * (1 - a2)
    d1 = a1 * (1 - a1) * (W2.T @ d2)
    print("backward pass, t =", T[0], " C = 1/2 sum (a - t)^2")
    for name, d in (("layer 2", d2), ("layer 1", d1)):
        for j in range(2):
            print(f"  {name} neuron {j + 1}: delta = {d[j]:+.6e}")
    hand = {
        "0.weight": np.outer(d1, X[0]),
        "0.bias": d1,
        "2.weight": np.outer(d2, a1),
        "2.bias": d2,
    }

    # fastnn: a training forward, the loss gradient, backward.
    out = model.forward(X, training=True)
    value, grad = loss(out, T)
    model.backward(grad)
    analytic = {p.name: p.grad.copy() for p in model.parameters()}
    numeric = numeric_grads(model, loss)
    checked = fastnn.gradcheck(model, X, T, loss)

    print(f"loss C = {value:.6f}  (fastnn output {out[0]}, by hand {a2})")
    print(
        f"{'parameter':<10} {'by hand (delta recursion)':<36} {'|hand - .grad|':>14} "
        f"{'|hand - numeric|':>17}"
    )
    hand_vs_grad = hand_vs_numeric = 0.0
    for name in hand:
        e1 = float(np.max(np.abs(hand[name] - analytic[name])))
        e2 = float(np.max(np.abs(hand[name] - numeric[name])))
        hand_vs_grad, hand_vs_numeric = max(hand_vs_grad, e1), max(hand_vs_numeric, e2)
        print(
            f"{name:<10} {np.array2string(hand[name].ravel(), precision=6):<36} "
            f"{e1:14.1e} {e2:17.1e}"
        )
    worst = max(checked.values())
    print(f"fastnn.gradcheck worst relative error: {worst:.1e}")
    return {
        "z1": z1,
        "a1": a1,
        "z2": z2,
        "a2": a2,
        "delta1": d1,
        "delta2": d2,
        "hand": hand,
        "grad": analytic,
        "numeric": numeric,
        "hand_vs_grad": hand_vs_grad,
        "hand_vs_numeric": hand_vs_numeric,
        "gradcheck": worst,
    }


if __name__ == "__main__":
    main()
