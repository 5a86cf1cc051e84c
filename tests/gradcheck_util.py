"""An independent float64 central-difference oracle for the gradient tests."""
import numpy as np


def rel_error(a, b):
    """||a - b|| / (||a|| + ||b||), 0 when both vanish."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to the array x, in place."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


def check_model(model, X, y, loss):
    """Worst relative error over every parameter and the input gradient."""
    X = np.array(X, dtype=np.float64)

    def objective():
        out = model.forward(X, training=True)
        return loss(out, y)[0] + model.regularization_loss()

    out = model.forward(X, training=True)
    _, grad = loss(out, y)
    dX = model.backward(grad)
    errors = {p.name: rel_error(p.grad, numeric_grad(objective, p.data)) for p in model.parameters()}
    errors["input"] = rel_error(dX, numeric_grad(objective, X))
    return errors
