"""Data-parallel training over MPI, with Horovod's semantics (needs the ``mpi`` extra:
``pip install "fastnn[mpi]"``, which brings mpi4py; an MPI implementation too, such as the
``mpich`` wheel). Every process (rank) holds the whole model and trains on its own shard of
the data; before each update the gradients are averaged over the ranks, so every rank makes
the same update and N ranks with batch ``b`` take the steps of one process with batch
``N*b``. Launch with ``mpiexec -n 4 python train.py``::

    from fastnn import distributed as dist
    dist.init()
    dist.broadcast_parameters(model, root=0)
    opt = dist.DistributedOptimizer(optim.SGD(model, lr=0.1, momentum=0.9))
    model.fit(X[dist.rank()::dist.size()], y[dist.rank()::dist.size()],
              loss=SoftmaxCrossEntropy(), optimizer=opt)

The average is reproducible bit for bit: MPI's own Allreduce may add the ranks' values in
any order, so the reduction here fixes one. All the gradients of one dtype are packed into
one flat buffer (one exchange per step, not one per parameter), cut into ``size`` equal
chunks; rank ``k`` receives every rank's chunk ``k`` (``Alltoall``), adds them in rank order
``0, 1, ..., size-1`` and divides by ``size``, and the sums are gathered back to every rank
(``Allgather``). Every rank ends with the same bits, and so do two runs. Each rank sends and
receives ``2 (size-1)/size`` times the buffer, as a ring Allreduce does.

mpi4py is imported with this module (``import fastnn`` does not import it), and MPI itself
starts in :func:`init`."""

from __future__ import annotations

import math
import sys

import numpy as np

from fastnn import kernels

try:
    import mpi4py  # noqa: F401  (only checks that it is there; MPI starts in init())
except ImportError:
    raise ImportError(
        'fastnn.distributed needs mpi4py; install it with: pip install "fastnn[mpi]"'
    ) from None

__all__ = [
    "init",
    "rank",
    "size",
    "ProcessGroup",
    "DistributedOptimizer",
    "broadcast_parameters",
    "broadcast_optimizer_state",
]

#: the group that init() set up, None before
_group: ProcessGroup | None = None


class ProcessGroup:
    """The ranks of an MPI communicator that train together: ``rank``, ``size`` and the
    collectives that :class:`DistributedOptimizer` and ``fit`` use. Made by :func:`init`."""

    def __init__(self, comm):
        self.comm = comm
        #: this process's index in the group, 0 to ``size - 1``
        self.rank = comm.Get_rank()
        #: the number of processes in the group
        self.size = comm.Get_size()

    def allgather(self, values):
        """Every rank's `values` (a sequence of numbers, the same length on every rank) as
        a float64 array of shape ``(size, len(values))``, row ``r`` from rank ``r``."""
        mine = np.asarray(values, dtype=np.float64).reshape(-1)
        out = np.empty((self.size, mine.size), dtype=np.float64)
        self.comm.Allgather(mine, out)
        return out

    def average_(self, flat, chunk):
        """Replace `flat` (1-D, contiguous, of a length divisible by ``size``) by its mean
        over the ranks, on every rank the same bits; `chunk` (length ``len(flat) * (1 +
        1/size)``, same dtype) is scratch. The fixed-order reduction of the module
        docstring."""
        n = self.size
        if n == 1:
            return flat
        part = flat.size // n
        received, own = chunk[: flat.size].reshape(n, part), chunk[flat.size :]
        self.comm.Alltoall(flat, received)
        np.add(received[0], received[1], out=own)
        for k in range(2, n):
            np.add(own, received[k], out=own)
        np.divide(own, n, out=own)
        self.comm.Allgather(own, flat)
        return flat

    def __repr__(self):
        return f"ProcessGroup(rank={self.rank}, size={self.size})"


def init(comm=None, *, abort_on_exception=True):
    """Start MPI (if it is not running) and make `comm` (default ``MPI.COMM_WORLD``) the
    group that :func:`rank`, :func:`size` and the rest of this module use; returns the
    :class:`ProcessGroup`. Call it once, at the start of the script, on every rank.

    With `abort_on_exception` (the default), an exception that no code catches prints its
    traceback and then aborts the whole job (``MPI_Abort``): without this, the other ranks
    would wait forever for the failed one in their next collective."""
    global _group
    from mpi4py import MPI

    _group = ProcessGroup(MPI.COMM_WORLD if comm is None else comm)
    if abort_on_exception:
        _install_abort_hook(_group.comm)
    return _group


def _install_abort_hook(comm):
    previous = sys.excepthook
    if getattr(previous, "_fastnn_abort", False):
        return

    def abort_on_exception(exc_type, exc, tb):
        previous(exc_type, exc, tb)
        sys.stderr.flush()
        comm.Abort(1)

    abort_on_exception._fastnn_abort = True
    sys.excepthook = abort_on_exception


def _current(what):
    if _group is None:
        raise RuntimeError(f"fastnn.distributed.{what}: call fastnn.distributed.init() first")
    return _group


def rank():
    """This process's rank, 0 to ``size() - 1`` (after :func:`init`)."""
    return _current("rank()").rank


def size():
    """The number of processes training together (after :func:`init`)."""
    return _current("size()").size


def _root(root, group, where):
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)):
        raise TypeError(f"{where}: root must be an int, got {type(root).__name__}")
    if not 0 <= root < group.size:
        raise ValueError(f"{where}: root must be a rank in [0, {group.size}), got {root}")
    return int(root)


def broadcast_parameters(model, root=0):
    """Copy rank `root`'s parameters and buffers (a BatchNorm's running statistics) to the
    model of every other rank, so that all start from the same weights. Every rank must
    call it with a model of the same architecture; a different one raises ValueError on
    every rank."""
    group = _current("broadcast_parameters()")
    root = _root(root, group, "broadcast_parameters")
    if not hasattr(model, "state_dict") or not hasattr(model, "load_state_dict"):
        raise TypeError(
            f"broadcast_parameters: model must be a fastnn model, got {type(model).__name__}"
        )
    state = model.state_dict()
    layout = [(k, v.shape, v.dtype.str) for k, v in state.items()]
    theirs = group.comm.bcast(layout, root=root)
    same = group.allgather([theirs == layout])
    if not same.all():
        differ = [r for r in range(group.size) if not same[r, 0]]
        raise ValueError(
            f"broadcast_parameters: the models of ranks {differ} differ from rank {root}'s "
            "in their parameters' names, shapes or dtypes; build the same model on every rank"
        )
    for value in state.values():
        group.comm.Bcast(value, root=root)
    if group.rank != root:
        model.load_state_dict(state)


def broadcast_optimizer_state(optimizer, root=0):
    """Copy rank `root`'s optimizer state (hyperparameters, step counts, moment buffers:
    its ``state_dict()``) to the optimizer of every other rank, as when resuming from a
    checkpoint that rank `root` loaded."""
    group = _current("broadcast_optimizer_state()")
    root = _root(root, group, "broadcast_optimizer_state")
    if not hasattr(optimizer, "state_dict"):
        raise TypeError(
            "broadcast_optimizer_state: optimizer must be a fastnn optimizer, got "
            f"{type(optimizer).__name__}"
        )
    state = group.comm.bcast(optimizer.state_dict() if group.rank == root else None, root=root)
    if group.rank != root:
        optimizer.load_state_dict(state)


class _FusedGradients:
    """The flat buffers that carry one dtype's gradients through the average, allocated
    once for a parameter list. One element past the gradients carries whether this rank's
    loss was finite (0, or NaN), so the ranks agree on skipping a step."""

    def __init__(self, params, n_ranks):
        self.params = params
        self.sizes = [p.grad.size for p in params]
        self.total = sum(self.sizes)
        length = -(-(self.total + 1) // n_ranks) * n_ranks  # padded to a multiple of n_ranks
        dtype = params[0].grad.dtype
        self.flat = np.zeros(length, dtype)
        self.scratch = np.empty(length + length // n_ranks, dtype)

    def average(self, group, finite):
        flat, start = self.flat, 0
        for p, n in zip(self.params, self.sizes):
            np.copyto(flat[start : start + n].reshape(p.grad.shape), p.grad)
            start += n
        flat[self.total :] = 0.0 if finite else math.nan
        group.average_(flat, self.scratch)
        start = 0
        for p, n in zip(self.params, self.sizes):
            np.copyto(p.grad, flat[start : start + n].reshape(p.grad.shape))
            start += n
        return kernels.all_finite(flat)


class DistributedOptimizer:
    """Wrap a fastnn optimizer so that every step first averages the gradients over the
    ranks of the group (default: the one :func:`init` set up); everything else (``lr``,
    ``state_dict``, ``load_state_dict``, ``params``...) is the wrapped optimizer's.

    Use it as the optimizer itself: ``loss.backward``-style loops call :meth:`step` (which
    averages, then updates), and ``fit`` and ``train_on_batch`` call :meth:`synchronize`
    before their finiteness check, then ``step()``, which then updates without averaging
    again. Every rank must take the same number of steps: each one is a collective."""

    def __init__(self, optimizer, group=None):
        if not (hasattr(optimizer, "step") and hasattr(optimizer, "params")):
            raise TypeError(
                "DistributedOptimizer: optimizer must be a fastnn optimizer such as "
                f"optim.SGD(model, lr=0.1), got {type(optimizer).__name__}"
            )
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedOptimizer: optimizer is already a DistributedOptimizer")
        if group is None:
            group = _current("DistributedOptimizer()")
        elif not isinstance(group, ProcessGroup):
            raise TypeError(
                f"DistributedOptimizer: group must be a ProcessGroup, got {type(group).__name__}"
            )
        self.optimizer = optimizer
        #: the ranks that average their gradients: ``fit`` reads it to average its logs
        self.group = group
        by_dtype: dict[np.dtype, list] = {}
        for p in optimizer.params:
            by_dtype.setdefault(p.grad.dtype, []).append(p)
        self._fused = [_FusedGradients(ps, group.size) for ps in by_dtype.values()]
        self._averaged = False

    @property
    def lr(self):
        return self.optimizer.lr

    @lr.setter
    def lr(self, value):
        self.optimizer.lr = value

    def __getattr__(self, name):
        # Only reached for names this class does not define: the wrapped optimizer's.
        if name == "optimizer":  # before __init__ set it (copy, pickle)
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def synchronize(self, loss=0.0):
        """Average the gradients over the ranks now; the next :meth:`step` applies them
        without averaging again. `loss` is this rank's loss for the batch. Returns it when
        every rank's loss and the averaged gradients are finite, NaN otherwise (and then no
        step follows: the next ``step()`` averages afresh), the same verdict on every rank,
        so that all skip the update or none does."""
        finite = math.isfinite(loss)
        # Every dtype's buffer goes through its collective, whatever the earlier verdicts.
        verdicts = [f.average(self.group, finite) for f in self._fused]
        ok = all(verdicts)
        self._averaged = ok
        return loss if ok else math.nan

    def step(self, *args, **kwargs):
        """Average the gradients over the ranks (unless :meth:`synchronize` just did), then
        run the wrapped optimizer's ``step`` with these arguments and return what it
        returns."""
        if not self._averaged:
            for f in self._fused:
                f.average(self.group, True)
        self._averaged = False
        return self.optimizer.step(*args, **kwargs)

    def __reduce__(self):
        # A communicator does not cross processes: a pickle (of a model after fit, say)
        # carries the wrapped optimizer, which the copy then trains with on its own.
        return _unwrapped, (self.optimizer,)

    def __repr__(self):
        return f"DistributedOptimizer({self.optimizer!r}, {self.group!r})"


def _unwrapped(optimizer):
    return optimizer
