"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor``, drop-in replacements for
:mod:`sklearn.neural_network`'s classes that train through fastnn's kernels.

The constructor parameters, their defaults, the objective and the fitted attributes are
scikit-learn's; see docs/guide/sklearn.md for the (small) documented differences. Extras:
``activation="leaky_relu"``, ``solver="adamw" | "rmsprop" | "adagrad"``, ``dropout``,
``batch_norm``, ``dtype``, and the fitted ``model_``: the :class:`fastnn.Sequential` itself
(logits out), for ``fastnn.save``, ``fastnn.onnx.export`` or PyTorch.

The objective is scikit-learn's, batch by batch: with ``s`` the batch's sample-weight sum
(its size when unweighted), ``loss = sum_i w_i l_i / s + alpha / 2 * sum ||W||^2 / s`` where
``l_i`` is the cross-entropy (summed over outputs for multilabel) or half the squared error
(averaged over outputs). Its gradient with respect to the output layer's pre-activation is
``w_i (act(z_i) - y_i) / s`` for each pairing used (softmax + cross-entropy, sigmoid +
binary cross-entropy, identity + squared error)."""

from __future__ import annotations

import functools
import math
import numbers
import warnings

import numpy as np

try:
    import sklearn  # noqa: F401  (the extra is present)
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (
        _check_partial_fit_first_call,
        check_classification_targets,
        type_of_target,
        unique_labels,
    )
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "fastnn.sklearn needs scikit-learn; install it with: pip install 'fastnn[sklearn]'"
    ) from exc

try:
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn < 1.6 validates through a BaseEstimator method

    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


import itertools

from fastnn import kernels, optim
from fastnn import layers as L
from fastnn._validation import SparseRows, as_sparse_rows, elementwise_view, float_dtype, is_sparse
from fastnn.losses import BCEWithLogits, MSELoss, SoftmaxCrossEntropy
from fastnn.model import Sequential

__all__ = ["MLPClassifier", "MLPRegressor"]

#: scikit-learn's activation names (and leaky_relu); fastnn calls "logistic" "sigmoid"
_ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu")
_STOCHASTIC = ("adam", "sgd", "adamw", "rmsprop", "adagrad")
_SOLVERS = _STOCHASTIC + ("lbfgs",)
_SCHEDULES = ("constant", "invscaling", "adaptive")
#: the sparse formats validation accepts, as scikit-learn's MLP: it converts the others (COO,
#: LIL, ...) to CSR; fit and predict convert CSC to CSR once, which the kernels take
_SPARSE = ["csr", "csc"]
#: the unweighted multiclass batch loss (class indices in, mean over the batch)
_CROSS_ENTROPY = SoftmaxCrossEntropy()

#: scikit-learn's estimator checks that cannot hold for these estimators, with the reason;
#: passed as ``expected_failed_checks`` (scikit-learn >= 1.6) and as the ``_xfail_checks``
#: tag (older versions).
_EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "float32 rounding: weighted and repeated-row fits agree to ~1e-7 relative in the "
        "default float32, the check demands rtol=1e-7; it passes with dtype='float64' for "
        "every solver (tests/test_sklearn.py)"
    ),
    "check_sample_weight_equivalence_on_sparse_data": (
        "float32 rounding, as on dense data; it passes with dtype='float64' for every solver "
        "(tests/test_sklearn.py)"
    ),
}


def _stochastic_solver(estimator):
    """partial_fit exists only for the stochastic solvers, as in scikit-learn."""
    if estimator.solver not in _STOCHASTIC:
        raise AttributeError(
            f"partial_fit is only available for stochastic optimizers. "
            f"{estimator.solver} is not stochastic."
        )
    return True


def _check_choice(value, name, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


def _check_number(
    value, name, *, integer=False, low=None, high=None, low_open=False, high_open=False
):
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = "an integer" if integer else "a real number"
        raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    if (
        np.isnan(value)
        or (low is not None and (value < low or (low_open and value == low)))
        or (high is not None and (value > high or (high_open and value == high)))
    ):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        interval = (
            f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        )
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


class _BaseMLP(BaseEstimator):
    """Shared parameters, validation and training of both estimators."""

    _loss_name = ""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        batch_norm=False,
        dtype="float32",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.dtype = dtype

    # ---- parameters ----------------------------------------------------------------------

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            raise TypeError(
                "hidden_layer_sizes must be an int or a sequence of ints, got "
                f"{self.hidden_layer_sizes!r}"
            ) from None
        for s in sizes:
            _check_number(s, "hidden_layer_sizes[i]", integer=True, low=1)
        return [int(s) for s in sizes]

    def _check_params(self):
        _check_choice(self.activation, "activation", _ACTIVATIONS)
        _check_choice(self.solver, "solver", _SOLVERS)
        _check_choice(self.learning_rate, "learning_rate", _SCHEDULES)
        _check_number(self.alpha, "alpha", low=0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_number(self.batch_size, "batch_size", integer=True, low=1)
        _check_number(self.learning_rate_init, "learning_rate_init", low=0, low_open=True)
        _check_number(self.power_t, "power_t", low=0)
        _check_number(self.max_iter, "max_iter", integer=True, low=1)
        _check_number(self.tol, "tol", low=0)
        _check_number(self.momentum, "momentum", low=0, high=1)
        _check_number(
            self.validation_fraction, "validation_fraction", low=0, high=1, high_open=True
        )
        _check_number(self.beta_1, "beta_1", low=0, high=1, high_open=True)
        _check_number(self.beta_2, "beta_2", low=0, high=1, high_open=True)
        _check_number(self.epsilon, "epsilon", low=0, low_open=True)
        if self.n_iter_no_change != np.inf:
            _check_number(self.n_iter_no_change, "n_iter_no_change", integer=True, low=1)
        _check_number(self.max_fun, "max_fun", integer=True, low=1)
        _check_number(self.dropout, "dropout", low=0, high=1, high_open=True)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping", "batch_norm"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.solver == "lbfgs" and self.dropout:
            raise ValueError(
                "dropout must be 0 with solver='lbfgs' (L-BFGS needs a "
                f"deterministic objective), got dropout={self.dropout!r}"
            )
        return float_dtype(self.dtype)

    # ---- model -------------------------------------------------------------------------------

    def _build(self, layer_units, dtype):
        """The fastnn network (logits out) with scikit-learn's Glorot-uniform initialisation
        drawn from ``self._random_state`` in scikit-learn's order, so that a seed gives the
        same starting weights as scikit-learn's MLP."""
        act = L.get_activation("sigmoid" if self.activation == "logistic" else self.activation)
        layers: list[L.Layer] = []
        dense = []
        n_dense = len(layer_units) - 1
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(layer_units)):
            d = L.Dense(fan_in, fan_out, init="zeros", dtype=dtype)
            factor = 2.0 if self.activation == "logistic" else 6.0
            bound = np.sqrt(factor / (fan_in + fan_out))
            d.weight.data[...] = self._random_state.uniform(-bound, bound, (fan_in, fan_out)).T
            d.bias.data[...] = self._random_state.uniform(-bound, bound, fan_out)
            layers.append(d)
            dense.append(d)
            if i < n_dense - 1:
                if self.batch_norm:
                    layers.append(L.BatchNorm1d(fan_out, dtype=dtype))
                layers.append(act())
                if self.dropout:
                    layers.append(L.Dropout(self.dropout, rng=self._random_state.randint(2**31)))
        self.model_ = Sequential(*layers, dtype=dtype)
        self._dense = dense
        self._link_attributes()

    def _link_attributes(self):
        # coefs_[i] is a transposed view of the Dense weight, so scikit-learn's (n_in, n_out)
        # layout costs no copy and edits to coefs_ reach the model.
        self.coefs_ = [d.weight.data.T for d in self._dense]
        self.intercepts_ = [d.bias.data for d in self._dense]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("coefs_", None)
        state.pop("intercepts_", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_dense" in state:
            self._link_attributes()

    def _make_optimizers(self):
        """One optimizer for the Dense weights, which carry the L2 term (as the optimizer's
        fused weight decay, set per batch), and one for the intercepts and BatchNorm
        parameters, which scikit-learn does not penalise."""
        weights = [d.weight for d in self._dense]
        others = [p for p in self.model_.parameters() if all(p is not w for w in weights)]
        return [
            self._make_optimizer(weights, self.alpha if self.solver == "adamw" else 0.0),
            self._make_optimizer(others, 0.0),
        ]

    def _make_optimizer(self, params, weight_decay):
        """The optimizer the solver names (``fastnn.optim.get``), with scikit-learn's
        hyperparameters translated into its arguments. With adamw, `weight_decay` is alpha
        as AdamW's decoupled weight decay, not an L2 term in the loss."""
        kwargs = {"lr": self.learning_rate_init, "weight_decay": weight_decay}
        if self.solver == "sgd":
            kwargs.update(
                momentum=self.momentum, nesterov=self.nesterovs_momentum and self.momentum > 0
            )
        elif self.solver in ("adam", "adamw"):
            kwargs.update(betas=(self.beta_1, self.beta_2), eps=self.epsilon)
        else:
            kwargs.update(eps=self.epsilon)
        return optim.get(self.solver)(params, **kwargs)

    # ---- the objective -------------------------------------------------------------------

    def _batch_loss(self, sw):
        """The loss ``model_.forward_backward`` runs on a batch with sample weights `sw`
        (None: unweighted): scikit-learn's batch loss without the penalty, and its gradient
        with respect to the logits."""
        if self._loss_name == "softmax" and sw is None:
            # The mean cross-entropy of class indices is fastnn's own loss, whose kernel
            # writes the gradient into the model's buffer.
            return _CROSS_ENTROPY
        return functools.partial(self._loss_and_grad, sw=sw)

    def _loss_and_grad(self, out, y, sw):
        """scikit-learn's batch loss (without the penalty) and d loss / d logits, where it is
        not one of fastnn's losses as it is: weighted samples, the logistic loss summed
        over the outputs, the squared error's gradient not divided by the outputs."""
        n = out.shape[0]
        if self._loss_name == "softmax":
            # Weighted one-hot rows: the kernel's loss is then sum_i w_i l_i / s and its
            # gradient (softmax * rowsum(t) - t) is w_i (p_i - y_i) / s.
            t = np.zeros(out.shape, out.dtype)
            t[np.arange(n), y] = sw / sw.sum()
            return SoftmaxCrossEntropy(reduction="sum")(out, t)
        if self._loss_name == "logistic":
            value, grad = BCEWithLogits(reduction="sum")(out, y)
            if sw is None:
                grad *= out.dtype.type(1.0 / n)
                return value / n, grad
            scale = (sw / sw.sum()).astype(out.dtype)
            grad *= scale[:, None]
            per_row = (np.logaddexp(0, out) - out * y).sum(axis=1)
            return float(per_row @ scale), grad
        value, grad = MSELoss(reduction="half_sum")(out, y)
        k = out.shape[1]
        if sw is None:
            grad *= out.dtype.type(1.0 / n)
            return value / (n * k), grad
        scale = (sw / sw.sum()).astype(out.dtype)
        per_row = 0.5 * np.einsum("ij,ij->i", grad, grad)
        grad *= scale[:, None]
        return float(per_row @ scale) / k, grad

    def _forward_backward(self, xb, yb, swb):
        """The gradients of one batch (the model's own step, as in fit, without the update);
        returns scikit-learn's batch loss without the penalty, and the batch's weight sum s."""
        value, _ = self.model_.forward_backward(xb, yb, loss=self._batch_loss(swb))
        return value, float(len(xb) if swb is None else swb.sum())

    def _stochastic_step(self, xb, yb, swb):
        """One update; returns scikit-learn's batch loss, penalty alpha/2 ||W||^2 / s
        included."""
        value, s = self._forward_backward(xb, yb, swb)
        weights_opt, others_opt = self._optimizers
        if self.solver == "adam":
            # scikit-learn's Adam divides by sqrt(v) + epsilon where PyTorch's divides by
            # sqrt(v / (1 - beta_2^t)) + eps; the same update needs
            # eps = epsilon / sqrt(1 - beta_2^t). It matters for weights whose gradient is only
            # the tiny L2 term (inputs that are always zero).
            eps = self.epsilon / math.sqrt(1.0 - self.beta_2 ** (weights_opt.steps + 1))
            weights_opt.hyper["eps"] = others_opt.hyper["eps"] = eps
        if self.alpha and self.solver != "adamw":
            # The penalty's gradient alpha W / s is the optimizer's weight decay, applied in
            # its update kernel; its value needs ||W||^2 before the update, which Adam reads
            # in that same pass and the other optimizers in a pass of their own.
            weights_opt.hyper["weight_decay"] = self.alpha / s
            if self.solver == "adam":
                squares = weights_opt.step(sum_squares=True)
            else:
                squares = sum(
                    kernels.sum_squares(elementwise_view(d.weight.data)) for d in self._dense
                )
                weights_opt.step()
            value += 0.5 * self.alpha / s * squares
        else:
            weights_opt.step()
        others_opt.step()
        return value

    # ---- fitting -------------------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental=False):
        dtype = self._check_params()
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        X = X.astype(dtype, copy=False)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if is_sparse(X):
            # The kernels' form, once: a CSR's own arrays, a CSC converted to CSR.
            X = as_sparse_rows(X, dtype, "X")
        y = self._encode_target(y, dtype)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if self._loss_name == "softmax":
            n_outputs = len(self.classes_)
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self.n_iter_ = 0
            self.t_ = 0
            self.n_outputs_ = n_outputs
            self.n_layers_ = len(hidden) + 2
            self.out_activation_ = {
                "softmax": "softmax",
                "logistic": "logistic",
                "squared_error": "identity",
            }[self._loss_name]
            self._build([X.shape[1]] + hidden + [n_outputs], dtype)
            if self.solver in _STOCHASTIC:
                self.loss_curve_ = []
                self._no_improvement_count = 0
                if self.early_stopping:
                    self.validation_scores_ = []
                    self.best_validation_score_ = -np.inf
                    self.best_loss_ = None
                else:
                    self.best_loss_ = np.inf
                    self.validation_scores_ = None
                    self.best_validation_score_ = None
        elif self.model_.dtype != dtype:
            raise ValueError(
                f"dtype: warm_start/partial_fit needs the fitted model's dtype "
                f"{self.model_.dtype.name}, got {dtype.name}"
            )
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, y, sample_weight)
        else:
            self._fit_stochastic(X, y, sample_weight, incremental)
        if not all(np.isfinite(p.data).all() for p in self.model_.parameters()):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may "
                "contain large values and need to be preprocessed."
            )
        self.model_.stop_training = False
        # Sparse or dense training may have changed the order the first weight is stored in.
        self._link_attributes()
        return self

    def _fit_stochastic(self, X, y, sample_weight, incremental):
        if not incremental or not hasattr(self, "_optimizers"):
            self._optimizers = self._make_optimizers()
            self._lr = self.learning_rate_init
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.early_stopping:
            # As scikit-learn: stratified only for single-output classification.
            stratify = y if self._loss_name == "logistic" and self.n_outputs_ == 1 else None
            # Split positions (the same draws as splitting the arrays), which SparseRows
            # can take too.
            train, val = train_test_split(
                np.arange(X.shape[0]),
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X_train, X_val, y_train, y_val = X[train], X[val], y[train], y[val]
            sw_train, sw_val = (
                (sample_weight[train], sample_weight[val])
                if sample_weight is not None
                else (None, None)
            )
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase "
                    "'validation_fraction' or the size of your dataset."
                )
            y_val = self._decode_target(y_val)
        else:
            X_train, y_train, sw_train = X, y, sample_weight
            X_val = y_val = sw_val = None
        n = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. "
                    "It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n))
        sample_idx = np.arange(n)
        sparse = isinstance(X_train, SparseRows)
        self.model_.stop_training = False
        try:
            for _ in range(self.max_iter):
                if self.shuffle:
                    # sklearn.utils.shuffle's permutation (same draws from the same
                    # RandomState) without its per-call parameter validation, a visible
                    # share of a small network's epoch.
                    perm = np.arange(n)
                    self._random_state.shuffle(perm)
                    sample_idx = sample_idx[perm]
                total = 0.0
                for start in range(0, n, batch_size):
                    stop = min(start + batch_size, n)
                    if self.shuffle:
                        # take() gathers rows faster than fancy indexing does.
                        idx = sample_idx[start:stop]
                        xb = X_train[idx] if sparse else X_train.take(idx, axis=0)
                        yb = y_train.take(idx, axis=0)
                        swb = None if sw_train is None else sw_train.take(idx)
                    else:
                        xb, yb = X_train[start:stop], y_train[start:stop]
                        swb = None if sw_train is None else sw_train[start:stop]
                    total += self._stochastic_step(xb, yb, swb) * (stop - start)
                self.n_iter_ += 1
                self.loss_ = total / n
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._update_no_improvement_count(X_val, y_val, sw_val)
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    self._set_lr(self.learning_rate_init / (self.t_ + 1) ** self.power_t)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if self.early_stopping else "Training loss"
                    msg = (
                        f"{what} did not improve more than tol={self.tol:f} for "
                        f"{self.n_iter_no_change} consecutive epochs."
                    )
                    if self._trigger_stopping(msg):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                        "reached and the optimization hasn't converged yet.",
                        ConvergenceWarning,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if self.early_stopping:
            self.model_.load_state_dict(self._best_state)

    def _set_lr(self, lr):
        """Change sgd's learning rate the way scikit-learn does. Its velocity is
        ``momentum v - lr g`` (past steps keep the rate they were taken with) while PyTorch's
        SGD multiplies its whole buffer by the current rate, so the buffer is rescaled by
        old/new to make the two updates identical."""
        for opt in self._optimizers:
            for state in opt.state:
                if "momentum_buffer" in state:
                    buf = state["momentum_buffer"]
                    buf *= buf.dtype.type(self._lr / lr)
            opt.lr = lr
        self._lr = lr

    def _trigger_stopping(self, msg):
        """scikit-learn's rule: stop, unless sgd with the adaptive schedule can still divide
        its learning rate by 5."""
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._set_lr(self._lr / 5.0)
        if self.verbose:
            print(msg + f" Setting learning rate to {self._lr:f}")
        return False

    def _update_no_improvement_count(self, X_val, y_val, sw_val):
        if self.early_stopping:
            score = self._score_arrays(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_state = self.model_.state_dict()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _fit_lbfgs(self, X, y, sample_weight):
        try:
            import scipy.optimize
        except ImportError:
            raise ImportError("solver='lbfgs' needs SciPy: pip install scipy") from None
        params = self.model_.parameters()

        def unpack(theta):
            start = 0
            for p in params:
                p.data[...] = theta[start : start + p.data.size].reshape(p.data.shape)
                start += p.data.size

        def objective(theta):
            unpack(theta)
            loss, s = self._forward_backward(X, y, sample_weight)
            if self.alpha:
                # alpha/2 ||W||^2 / s: one kernel pass per weight adds the gradient and
                # returns the value.
                l2 = self.alpha / (2.0 * s)
                loss += sum(
                    kernels.penalty(
                        elementwise_view(d.weight.data), elementwise_view(d.weight.grad), l2=l2
                    )
                    for d in self._dense
                )
            return loss, np.concatenate([p.grad.ravel() for p in params]).astype(np.float64)

        theta0 = np.concatenate([p.data.ravel() for p in params]).astype(np.float64)
        res = scipy.optimize.minimize(
            objective,
            theta0,
            method="L-BFGS-B",
            jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
        )
        if res.status != 0:
            warnings.warn(
                f"lbfgs failed to converge after {res.nit} iteration(s) "
                f"(status={res.status}): {res.message}",
                ConvergenceWarning,
            )
        self.n_iter_ = min(int(res.nit), self.max_iter)
        self.loss_ = float(res.fun)
        unpack(res.x)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to (X, y); ``sample_weight`` weighs each sample's loss."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    # ---- prediction ------------------------------------------------------------------------

    def _logits(self, X, check_input=True):
        check_is_fitted(self)
        if check_input:
            X = _validate_data(
                self, X, reset=False, dtype=(np.float64, np.float32), accept_sparse=_SPARSE
            )
        return self.model_.predict(X)

    def _score_arrays(self, X, y, sample_weight):
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags

    def _more_tags(self):
        return {"_xfail_checks": dict(_EXPECTED_FAILED_CHECKS)}


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, scikit-learn's ``MLPClassifier`` on fastnn kernels:
    softmax outputs for multiclass, a sigmoid output for binary and multilabel (indicator
    ``y``) targets; class labels may be any type scikit-learn accepts (strings included).
    ``predict_proba`` returns the model's dtype (float32 by default)."""

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(
            self,
            X,
            y,
            multi_output=True,
            dtype=(np.float64, np.float32),
            accept_sparse=_SPARSE,
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        self._loss_name = "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"
        return X, y

    def _encode_target(self, y, dtype):
        if self._loss_name == "softmax":
            # Class indices, which the fused softmax-cross-entropy kernel takes directly.
            return np.searchsorted(self.classes_, y)
        return self._label_binarizer.transform(y).astype(dtype)

    def _decode_target(self, y):
        if self._loss_name == "softmax":
            return self.classes_[y]
        return self._label_binarizer.inverse_transform(y)

    def _proba(self, logits):
        if self._loss_name == "softmax":
            return kernels.softmax(logits)
        return kernels.activation_forward(logits, "sigmoid")

    def _predict(self, X, check_input=True):
        proba = self._proba(self._logits(X, check_input))
        if self.n_outputs_ == 1:
            proba = proba.ravel()
        return self._label_binarizer.inverse_transform(proba)

    def predict(self, X):
        """Predicted class labels (an indicator matrix for multilabel targets)."""
        return self._predict(X)

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        proba = self._proba(self._logits(X))
        if self.n_outputs_ == 1:
            p = proba.ravel()
            return np.stack([1 - p, p], axis=1)
        return proba

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    def _score_arrays(self, X, y, sample_weight):
        return accuracy_score(y, self._predict(X, check_input=False), sample_weight=sample_weight)

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` (all labels) is required on the first call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self):
        return {**super()._more_tags(), "multilabel": True}


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, scikit-learn's ``MLPRegressor`` (squared error) on
    fastnn kernels; ``y`` may have several columns. Predictions are in the model's dtype."""

    _loss_name = "squared_error"

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        batch_norm=False,
        dtype="float32",
    ):
        self.loss = loss
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dropout=dropout,
            batch_norm=batch_norm,
            dtype=dtype,
        )

    def _check_params(self):
        if self.loss != "squared_error":
            raise ValueError(
                f"loss must be 'squared_error' (fastnn has no Poisson loss yet), got {self.loss!r}"
            )
        return super()._check_params()

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            accept_sparse=_SPARSE,
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _encode_target(self, y, dtype):
        return (y.reshape(-1, 1) if y.ndim == 1 else y).astype(dtype)

    def _decode_target(self, y):
        return y

    def _predict(self, X, check_input=True):
        out = self._logits(X, check_input)
        return out.ravel() if out.shape[1] == 1 else out

    def predict(self, X):
        """Predicted values, ``(n_samples,)`` or ``(n_samples, n_outputs)``."""
        return self._predict(X)

    def _score_arrays(self, X, y, sample_weight):
        return r2_score(y, self._predict(X, check_input=False), sample_weight=sample_weight)

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
