"""A clean NumPy MLP training step, the baseline fastnn's step is measured against: the
same math as fastnn (ReLU hidden layers, softmax cross-entropy on logits, SGD momentum or
Adam), written the way a careful NumPy user would, with in-place updates where natural."""

import itertools

import numpy as np


class NumpyMLP:
    def __init__(self, sizes, dtype=np.float32, seed=0, optimizer="sgd", lr=0.01):
        rng = np.random.default_rng(seed)
        self.W = [
            rng.uniform(-1, 1, (i, o)).astype(dtype) * np.sqrt(6 / i).astype(dtype)
            for i, o in itertools.pairwise(sizes)
        ]
        self.b = [np.zeros(o, dtype) for o in sizes[1:]]
        self.params = self.W + self.b
        self.optimizer, self.lr, self.t = optimizer, lr, 0
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]

    def forward(self, x):
        for W, b in zip(self.W[:-1], self.b[:-1]):
            x = np.maximum(x @ W + b, 0)
        return x @ self.W[-1] + self.b[-1]

    def step(self, x, y):
        acts = [x]
        for W, b in zip(self.W[:-1], self.b[:-1]):
            acts.append(np.maximum(acts[-1] @ W + b, 0))
        logits = acts[-1] @ self.W[-1] + self.b[-1]
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        n = len(y)
        loss = -np.log(p[np.arange(n), y]).mean()
        p[np.arange(n), y] -= 1
        d = p / n
        grads_W, grads_b = [], []
        for i in range(len(self.W) - 1, -1, -1):
            grads_W.append(acts[i].T @ d)
            grads_b.append(d.sum(axis=0))
            if i:
                d = d @ self.W[i].T
                d *= acts[i] > 0
        grads = grads_W[::-1] + grads_b[::-1]
        self._update(grads)
        return loss

    def _update(self, grads):
        self.t += 1
        if self.optimizer == "sgd":
            for p, g, m in zip(self.params, grads, self.m):
                m *= 0.9
                m += g
                p -= self.lr * m
        else:
            b1, b2, eps = 0.9, 0.999, 1e-8
            c1, c2 = 1 - b1**self.t, 1 - b2**self.t
            for p, g, m, v in zip(self.params, grads, self.m, self.v):
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * g * g
                p -= (self.lr / c1) * m / (np.sqrt(v / c2) + eps)
