"""Sequential: an ordered stack of layers with PyTorch's naming and Keras-style training."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from fastnn import kernels
from fastnn import layers as L
from fastnn._validation import (
    NonFiniteError,
    SparseRows,
    as_array,
    as_float_array,
    as_sparse_rows,
    check_numeric,
    check_rank,
    elementwise_view,
    float_dtype,
    is_sparse,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Sequential"]


class Sequential:
    """Layers applied in order. Indices count every layer, activations included, exactly as
    ``torch.nn.Sequential`` does, so ``state_dict()`` keys are ``"0.weight"``, ``"0.bias"``...

    A Dense or Conv2d layer followed by an elementwise activation runs as one kernel call
    (the activation is applied in the GEMM's store phase, and its derivative and the bias
    gradient come out of one pass in backward); the layer list, repr and state_dict stay as
    written.

    Inputs are batch-first arrays of the rank the first layer that declares one takes:
    ``(n, features)`` for Dense, ``(N, C, H, W)`` images for Conv2d, pooling and
    BatchNorm2d; a model that starts with Flatten takes any rank from 2 up.

    A model whose first layer is Dense also takes SciPy sparse matrices (CSR as they are;
    CSC and other formats converted to CSR) in forward, predict, forward_backward,
    train_on_batch and fit: the first layer multiplies the sparse rows without densifying
    them; training on sparse input stores its weight F-contiguous (Dense._set_weight_order)."""

    def __init__(self, *layers, dtype=None):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, L.Layer):
                raise TypeError(f"layer {i} must be a fastnn Layer, got {type(layer).__name__}")
        self.layers = list(layers)
        dtypes = {layer.dtype for layer in self.layers if layer.dtype is not None}
        if dtype is not None:
            self.dtype = float_dtype(dtype)
        elif len(dtypes) > 1:
            raise TypeError(
                f"layers have different dtypes {sorted(d.name for d in dtypes)}; "
                "pass dtype= to Sequential to choose one"
            )
        else:
            self.dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
        for layer in self.layers:
            if layer.dtype != self.dtype:
                layer._set_dtype(self.dtype)
        for i, layer in enumerate(self.layers):
            for name, p in layer._params.items():
                p.name = f"{i}.{name}"
        self.in_features = self._check_widths()
        #: the rank of the inputs: that of the first layer that declares one (None: any), unless
        #: a Flatten comes first, which takes any rank (the layers after it see its output)
        self.input_ndim = None
        for layer in self.layers:
            if layer.input_ndim is not None or isinstance(layer, L.Flatten):
                self.input_ndim = layer.input_ndim
                break
        self._workspace = {}
        self._steps_token = None  # see _chain_steps
        self._use_plan(self._fusion_plan())
        self.stop_training = False
        self._out_shape = None
        #: set by ``fit``: the optimizer (so callbacks reach it) and the History
        self.optimizer = None
        self.history = None

    def _check_widths(self):
        """The size of the model's input axis 1 (features, or the channels of images; None
        when no layer fixes it), after checking that each layer accepts the size its
        predecessor produces. Layers before the first one that declares a size keep the size
        they are given, so that one is the model's; a Flatten ends what can be known before
        the input's other axes are seen (the layers after it check their input as it comes)."""
        in_features = width = None
        decided = False
        for i, layer in enumerate(self.layers):
            if width is None:
                width = getattr(layer, "in_features", None)
                if not decided:
                    in_features = width
                    decided = width is not None
            if width is not None:
                try:
                    width = layer.output_features(width)
                except ValueError as exc:
                    raise ValueError(f"layer {i} ({layer!r}): {exc}") from None
            if isinstance(layer, L.Flatten):
                decided, width = True, None
        return in_features

    def _fusion_plan(self):
        """The order of execution: runs of consecutive Dense layers as tuples of (Dense,
        activation fused into it or None) steps, each run one call into the compiled
        chain; a Conv2d with the activation after it fused in as a _ConvRun; any other
        layer on its own."""
        plan, i = [], 0
        while i < len(self.layers):
            layer = self.layers[i]
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            fused = isinstance(nxt, L._Activation) and nxt.fusable
            if type(layer) is L.Conv2d:
                plan.append(_ConvRun(layer, nxt if fused else None))
                i += 2 if fused else 1
                continue
            if type(layer) is not L.Dense:
                plan.append(layer)
                i += 1
                continue
            step = (layer, nxt if fused else None)
            if plan and type(plan[-1]) is tuple:
                plan[-1] += (step,)
            else:
                plan.append((step,))
            i += 2 if fused else 1
        return plan

    def _use_plan(self, plan):
        self._plan = plan
        # Backward without an input gradient stops at the first item with parameters: the
        # gradients of the inputs of the items before it would be thrown away.
        self._first_trained = next(
            (r for r, item in enumerate(plan) if type(item) is tuple or item.parameters()),
            len(plan),
        )
        # The items whose output may reach the caller of forward as it is (or as a view):
        # the last one that makes a new array, and the pass-through ones after it.
        self._fresh_from = len(plan) - 1
        while self._fresh_from > 0 and isinstance(plan[self._fresh_from], _PASS_THROUGH):
            self._fresh_from -= 1
        self._workspace.clear()
        #: run index -> (x, outputs) of the last training forward: what its backward reads
        self._saved = {}

    def __getstate__(self):
        # A pickle (how Dask and Ray ship a model to their workers) carries the layers, not
        # the per-batch-size buffers, the last training forward's arrays or the compiled
        # chain's steps: all are rebuilt on first use.
        state = {**self.__dict__, "_workspace": {}, "_saved": {}, "_out_shape": None}
        state.pop("_steps", None)
        state["_steps_token"] = None
        return state

    def _chain_steps(self):
        """For each item of the plan, the steps of the compiled Dense chain (a tuple of
        fastnn.kernels.DenseStep) for a run of Dense layers, None for another layer. They
        hold the layers' arrays themselves, so writes into those (optimizers,
        load_state_dict) keep them current; they are built again when an array or scalar
        they hold was replaced (layers.plan_token), with the plan itself if a LeakyReLU's
        slope changed sign."""
        token = L.plan_token()
        if token is not self._steps_token:
            plan = self._fusion_plan()
            if plan != self._plan:
                self._use_plan(plan)
            self._steps = tuple(
                tuple(dense.chain_step(act) for dense, act in item) if type(item) is tuple else None
                for item in self._plan
            )
            self._steps_token = token
        return self._steps

    # ---- computation -------------------------------------------------------------------

    def _prepare(self, X):
        if is_sparse(X):
            if not self.layers or type(self.layers[0]) is not L.Dense:
                first = type(self.layers[0]).__name__ if self.layers else "no layers"
                raise TypeError(
                    f"X: sparse input needs a model whose first layer is Dense, got {first}"
                )
            x = as_sparse_rows(X, self.dtype, "X")
            if x.shape[1] != self.in_features:
                raise ValueError(
                    f"X: the model expects {self.in_features} features, got shape {x.shape}"
                )
            return x
        x = as_float_array(X, self.dtype, "X")
        ndim = self.input_ndim
        check_rank(x, ndim, "X")
        if self.in_features is not None and x.shape[1] != self.in_features:
            what = "channels" if ndim == 4 else "features"
            raise ValueError(f"X: the model expects {self.in_features} {what}, got shape {x.shape}")
        return x

    def forward(self, X: ArrayLike, training: bool = False) -> np.ndarray:
        """The model's output for a batch ``X`` (``(n_samples, n_features)``, or images
        ``(N, C, H, W)`` for a convolutional model).

        In inference mode a non-finite output makes the model check its weights: NaN or
        infinite weights raise :class:`NonFiniteError` rather than return outputs from a
        diverged model. The check costs O(output) per call, O(parameters) only when an
        output is not finite; NaN in ``X`` itself propagates to the output."""
        x = self._forward(self._prepare(X), training, keep_output=True)
        if training:
            self._out_shape = x.shape
        elif not kernels.all_finite(x):
            self._check_finite()
        return x

    def _forward(self, x, training, keep_output):
        """In training mode the hidden Dense outputs go to buffers kept per batch size (only
        the backward reads them, and it follows the latest forward); with `keep_output` the
        output of each run of Dense layers is a new array, since it may be what the caller
        gets back, otherwise it is a buffer too (valid until the next step).

        Sparse rows go to the first Dense layer. Training keeps its weight F-contiguous for
        sparse input (weight.T is then what the sparse kernels read and write) and
        C-contiguous for dense input (what the compiled chain writes the gradient into);
        inference never changes it, so a model trained on dense input reads a transposed
        copy of that weight per sparse batch."""
        sparse = type(x) is SparseRows
        if training and self.layers and type(self.layers[0]) is L.Dense:
            self.layers[0]._set_weight_order("F" if sparse else "C")
        chains = self._chain_steps()
        for r, item in enumerate(self._plan):
            steps = chains[r]
            if sparse and r == 0:
                x = self._sparse_forward(
                    x, item, steps, training, keep_output and r >= self._fresh_from
                )
            elif type(item) is _ConvRun:
                out = None
                if training and x.ndim == 4 and not (keep_output and r >= self._fresh_from):
                    shape = item.conv.output_shape(x.shape)
                    out = self._buffers(("conv", r, shape), [shape])[0]
                x = item.conv.forward(x, training, item.act, out)
            elif steps is None:
                x = item.forward(x, training=training)
            elif not training:
                x = kernels.dense_chain_forward(x, steps)
            else:
                outs = self._step_buffers("forward", r, item, x.shape[0])
                if keep_output:
                    outs = outs[:-1] + (np.empty_like(outs[-1]),)
                y = kernels.dense_chain_forward(x, steps, outs)
                self._saved[r] = (x, outs)
                x = y
        return x

    def _sparse_forward(self, x, item, steps, training, keep_output):
        """The first run of Dense layers on sparse rows: its first step by the sparse kernel
        (bias and activation fused), the rest of the run by the compiled chain."""
        first = steps[0]
        outs = (None,) * len(steps)
        if training:
            outs = self._step_buffers("forward", 0, item, x.shape[0])
            if keep_output:
                outs = outs[:-1] + (np.empty_like(outs[-1]),)
        y = kernels.csr_matmul(
            x.data,
            x.indices,
            x.indptr,
            first.weight.T,
            bias=first.bias,
            activation=first.activation,
            negative_slope=first.negative_slope,
            out=outs[0],
        )
        if len(steps) > 1:
            y = kernels.dense_chain_forward(y, steps[1:], outs[1:] if training else None)
        if training:
            self._saved[0] = (x, outs)
        return y

    def _sparse_backward(self, dy, item, steps, saved, owned):
        """The backward of _sparse_forward: the rest of the run by the compiled chain, then
        the first step's activation derivative (with the bias gradient in the same pass) and
        its weight gradient from the sparse rows, A^T dz, written through weight.grad.T. The
        input is data: no gradient of it is computed."""
        x, outs = saved
        first = steps[0]
        if len(steps) > 1:
            dx_outs = self._step_buffers("backward", 0, item, x.shape[0])
            dy = kernels.dense_chain_backward(
                dy, steps[1:], outs[0], outs[1:], dx_outs[1:], True, owned
            )
            owned = True  # one of the model's buffers
        if first.activation != "identity":
            dy = kernels.activation_backward(
                dy,
                outs[0],
                first.activation,
                negative_slope=first.negative_slope,
                out=dy if owned else None,
                bias_grad_out=first.bias_grad,
            )
        elif first.bias_grad is not None:
            kernels.column_sum(dy, out=first.bias_grad)
        kernels.csr_t_matmul(x.data, x.indices, x.indptr, dy, out=first.weight_grad.T)
        if first.l1 or first.l2:
            kernels.penalty(first.weight.T, first.weight_grad.T, l1=first.l1, l2=first.l2)

    def _buffers(self, key, shapes):
        """Arrays of `shapes` (None: no array) kept for reuse under `key` (which includes the
        batch size)."""
        bufs = self._workspace.get(key)
        if bufs is None:
            if len(self._workspace) > 64:  # many batch sizes: keep memory bounded
                self._workspace.clear()
            bufs = self._workspace[key] = tuple(
                None if s is None else np.empty(s, self.dtype) for s in shapes
            )
        return bufs

    def _step_buffers(self, kind, r, steps, m):
        """Run `r`'s Dense outputs ("forward") or input gradients ("backward") for m rows;
        the gradient of a run's input is never a buffer (see _backward)."""
        bufs = self._workspace.get((kind, r, m))
        if bufs is None:
            if kind == "forward":
                shapes = [(m, layer.out_features) for layer, _ in steps]
            else:
                shapes = [None] + [(m, layer.in_features) for layer, _ in steps[1:]]
            bufs = self._buffers((kind, r, m), shapes)
        return bufs

    def nonfinite_state(self):
        """The state_dict key of the first parameter or buffer holding a NaN or infinity,
        or None. One pass over the weights (O(parameters), independent of the batch)."""
        for i, layer in enumerate(self.layers):
            for name, p in layer._params.items():
                if not kernels.all_finite(elementwise_view(p.data)):
                    return f"{i}.{name}"
            for name in layer._buffers:
                value = getattr(layer, name)  # None until set (Standardize before adapt)
                if (
                    isinstance(value, np.ndarray)
                    and value.dtype.kind == "f"
                    and not kernels.all_finite(value)
                ):
                    return f"{i}.{name}"
        return None

    def _check_finite(self):
        bad = self.nonfinite_state()
        if bad is not None:
            raise NonFiniteError(
                f"model weight {bad!r} contains NaN or infinity, so the model cannot predict: "
                "training diverged (lower the learning rate) or non-finite weights were loaded"
            )

    __call__ = forward

    def predict(self, X: ArrayLike, batch_size: int = 4096) -> np.ndarray:
        """Inference outputs, computed in batches so memory stays bounded for large X
        (``np.memmap`` included)."""
        # The training module sits above this one; see "training" below.
        from fastnn.training import predict

        return predict(self, X, batch_size=batch_size)

    def backward(self, dY: ArrayLike, input_grad: bool = False) -> np.ndarray | None:
        """Backpropagate ``dY`` (d loss / d output) after ``forward(..., training=True)``:
        overwrites every parameter's ``.grad``. With ``input_grad=True`` it also computes and
        returns d loss / d X (saliency maps, adversarial inputs); otherwise it returns None
        and skips that work, as PyTorch does for inputs that do not require a gradient.
        ``dY`` is never modified."""
        dy = as_float_array(dY, self.dtype, "dY")
        if self._out_shape is not None and dy.shape != self._out_shape:
            raise ValueError(
                f"dY must have the shape of the last training output {self._out_shape}, "
                f"got {dy.shape}"
            )
        return self._backward(dy, input_grad=bool(input_grad), dy_owned=False)

    def _backward(self, dy, input_grad, dy_owned):
        """The one backward of every training path. `dy_owned`: dy belongs to the model, so
        a kernel may write over it. Input gradients go to buffers kept per batch size, but
        for the first Dense of each run: that one is handed to a layer that may return it
        as it is, up to the caller when `input_grad`."""
        chains = self._chain_steps()
        given = dy
        stop = 0 if input_grad else self._first_trained
        for r in range(len(self._plan) - 1, stop - 1, -1):
            item, steps = self._plan[r], chains[r]
            owned = dy_owned or dy is not given
            if type(item) is _ConvRun:
                # The gradient of the first item's input is the caller's; with input_grad
                # a pass-through layer in front could hand any other one on to the caller.
                out = None
                if r > stop and not input_grad and item.conv._cache is not None:
                    shape = item.conv._cache[0].shape
                    out = self._buffers(("conv_dx", r, shape), [shape])[0]
                dy = item.conv.backward(dy, input_grad=r > stop or input_grad, out=out)
                continue
            if steps is None:
                dy = item.backward(dy)
                continue
            saved = self._saved.get(r)
            if saved is None:
                raise RuntimeError("backward called before a forward with training=True")
            if type(saved[0]) is SparseRows:
                if input_grad:
                    raise ValueError(
                        "backward: input_grad=True needs dense X; the last training forward "
                        "had sparse X, which has no gradient here"
                    )
                self._sparse_backward(dy, item, steps, saved, owned)
                continue
            dx_outs = self._step_buffers("backward", r, item, dy.shape[0])
            dy = kernels.dense_chain_backward(
                dy, steps, saved[0], saved[1], dx_outs, r > stop or input_grad, owned
            )
        return dy if input_grad else None

    def forward_backward(self, X: ArrayLike, y: Any, *, loss) -> tuple[float, np.ndarray]:
        """The gradient of one batch, without an update: a training-mode forward of ``X``,
        ``loss(output, y)`` and the backward pass, which overwrites every parameter's
        ``.grad`` (l1/l2 penalties included). Returns ``(loss_value, output)``.

        This is the step that :meth:`train_on_batch` (and so ``fit``) runs before its
        ``optimizer.step()``; call it directly to update the weights some other way (several
        optimizers, a penalty that changes per batch, L-BFGS over the whole set). It reuses
        the model's buffers per batch shape and computes no input gradient, so the output
        and the gradient are only valid until the next step.

        ``loss`` is a fastnn loss, whose kernel writes the gradient straight into a buffer
        of the model (``y`` converted as the loss converts it), or any callable
        ``loss(output, y) -> (value, grad)`` with ``grad`` of the output's shape, which is
        never written to. The backward runs whatever the value; check it (and the gradients)
        before stepping, as ``train_on_batch`` does."""
        out = self._forward(self._prepare(X), True, keep_output=False)
        kernel = getattr(type(loss), "kernel", None)
        if kernel is not None:
            grad = self._buffers(("loss", out.shape), [out.shape])[0]
            value, grad = kernel(out, loss.target_for(y, out), reduction=loss.reduction, out=grad)
        else:
            value, grad = loss(out, y)
            value = float(value)
            grad = as_float_array(grad, self.dtype, "loss gradient")
            if grad.shape != out.shape:
                raise ValueError(
                    f"loss gradient must have the output's shape {out.shape}, got {grad.shape}"
                )
        self._backward(grad, input_grad=False, dy_owned=kernel is not None)
        return value, out

    def train_on_batch(self, X: ArrayLike, y: ArrayLike, *, loss, optimizer) -> tuple:
        """One optimisation step: :meth:`forward_backward`, then ``optimizer.step()``.
        Returns ``(loss_value, output)``; the output is only valid until the next step. This
        is what ``fit`` runs: it reuses buffers per batch shape and skips the input gradient.

        A non-finite loss or gradient skips the update (the weights stay finite) and the
        returned loss is NaN; ``fit`` turns that into an error or a TerminateOnNaN stop.

        An optimizer with a ``synchronize(loss) -> loss`` method (a
        :class:`fastnn.distributed.DistributedOptimizer`) has it called between the backward
        and that check: it may change the gradients (averaging them over processes) and
        return NaN to skip the update."""
        value, out = self.forward_backward(X, y, loss=loss)
        # An optimizer that averages gradients over processes (fastnn.distributed) does so
        # here, before the check: every process then sees the same gradients and verdict, so
        # all of them step or none does (one that skipped alone would leave the others
        # waiting for it).
        synchronize = getattr(optimizer, "synchronize", None)
        if synchronize is not None:
            value = synchronize(value)
        # A ReLU can hide a NaN from the loss but not from the gradients; one pass over them
        # (O(parameters)) keeps the weights finite whatever happens.
        if not math.isfinite(value) or not all(
            kernels.all_finite(elementwise_view(p.grad)) for p in self.parameters()
        ):
            return math.nan, out
        optimizer.step()
        return value, out

    def regularization_loss(self) -> float:
        """The l1/l2 penalties' value (included in the gradients by backward)."""
        return float(
            sum(
                layer.regularization_loss()
                for layer in self.layers
                if hasattr(layer, "regularization_loss")
            )
        )

    # ---- parameters and state ------------------------------------------------------------

    def parameters(self) -> list[L.Parameter]:
        """Parameters in layer order; ``.name`` is the state_dict key ("0.weight")."""
        return [p for layer in self.layers for p in layer.parameters()]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer under PyTorch's keys."""
        return {
            f"{i}.{name}": value
            for i, layer in enumerate(self.layers)
            for name, value in layer.state_dict().items()
        }

    def load_state_dict(self, mapping: Mapping[str, Any], strict: bool = True) -> None:
        """Load values (anything ``np.asarray`` accepts, PyTorch CPU tensors included).
        BatchNorm's ``num_batches_tracked`` is optional: loaded when present, kept when not,
        and ignored where this model has no such buffer.

        Every value is checked (numbers, the shape of what it replaces; other numeric dtypes
        are converted) before any is loaded, so a bad one leaves the model unchanged; errors
        name the key as given ("0.weight")."""
        expected = self.state_dict()
        try:
            given = dict(mapping)
        except (TypeError, ValueError):
            raise TypeError(
                f"load_state_dict: mapping must be a dict of name -> array, got "
                f"{type(mapping).__name__}"
            ) from None
        for key in given:
            if not isinstance(key, str):
                raise TypeError(
                    f"load_state_dict: keys must be strings like '0.weight', got {key!r}"
                )
        optional = ".num_batches_tracked"
        given = {k: v for k, v in given.items() if k in expected or not k.endswith(optional)}
        missing = sorted(k for k in set(expected) - set(given) if not k.endswith(optional))
        unexpected = sorted(set(given) - set(expected))
        if strict and (missing or unexpected):
            problems = [
                f"{what} keys {keys}"
                for what, keys in (("missing", missing), ("unexpected", unexpected))
                if keys
            ]
            raise ValueError(f"load_state_dict: {', '.join(problems)}")
        per_layer: list[dict[str, np.ndarray]] = [{} for _ in self.layers]
        for key, current in expected.items():
            if key in given:
                i, name = key.split(".", 1)
                layer = self.layers[int(i)]
                per_layer[int(i)][name] = _state_value(
                    given[key], key, current, f"{type(layer).__name__}.{name}"
                )
        for layer, state in zip(self.layers, per_layer):
            if state:
                full = layer.state_dict()
                full.update(state)
                layer.load_state_dict(full)

    # ---- training --------------------------------------------------------------------------
    # fit, evaluate and predict hand over to fastnn.training, which sits a floor above the
    # model (it drives callbacks, checkpoints and progress). Their imports, made when called,
    # are the one upward edge of the import graph (ALLOWED_UPWARD in tests/test_imports.py).

    def fit(
        self,
        X,
        y,
        *,
        loss,
        optimizer,
        epochs=1,
        batch_size=32,
        metrics=(),
        validation_data=None,
        validation_split=0.0,
        shuffle=True,
        callbacks=(),
        seed=None,
        verbose=0,
    ):
        """Train for ``epochs`` passes over (X, y) in mini-batches; returns a History (also
        ``self.history``). ``self.optimizer`` is set to ``optimizer`` so that callbacks can
        reach it. ``verbose``: 0 silent, 1 a progress bar per epoch on stderr (one line per
        epoch when stderr is not a terminal), 2 one line per epoch. See
        :mod:`fastnn.training` and :mod:`fastnn.callbacks`."""
        from fastnn.training import fit

        return fit(
            self,
            X,
            y,
            loss=loss,
            optimizer=optimizer,
            epochs=epochs,
            batch_size=batch_size,
            metrics=metrics,
            validation_data=validation_data,
            validation_split=validation_split,
            shuffle=shuffle,
            callbacks=callbacks,
            seed=seed,
            verbose=verbose,
        )

    def evaluate(self, X, y, *, loss, metrics=(), batch_size=1024):
        """``{"loss": ..., "<metric>": ...}`` over (X, y) in inference mode."""
        from fastnn.training import evaluate

        return evaluate(self, X, y, loss=loss, metrics=metrics, batch_size=batch_size)

    # ---- container protocol ----------------------------------------------------------------

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        lines = [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)" if lines else "Sequential()"


class _ConvRun(NamedTuple):
    """A plan item: a Conv2d with the elementwise activation after it fused in (or None)."""

    conv: L.Conv2d
    act: L.Layer | None

    def parameters(self):
        return self.conv.parameters()


# Layers whose forward may return its input, or a view of it, as its output.
_PASS_THROUGH = (L.Flatten, L.Dropout)


def _state_value(value, key, current, owner):
    """A load_state_dict value (PyTorch tensors included, without importing torch) as an
    array, checked against the `current` array it replaces (owner: "Dense.weight"); the
    errors name the user's key."""
    prefix = "load_state_dict: "
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
    arr = check_numeric(
        as_array(value, repr(key), f"an array of shape {current.shape}", prefix), repr(key), prefix
    )
    if arr.shape != current.shape:
        raise ValueError(
            f"{prefix}{key!r} ({owner}): expected shape {current.shape}, got {arr.shape}"
        )
    return arr
