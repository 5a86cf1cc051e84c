# The validating floor between Python and csrc/. Every function here checks dtype, shape,
# strides, sizes and value ranges of what it hands to C, so that no caller can make the C
# floor read or write out of bounds; then it calls C with the GIL released.
# Public names are re-exported by fastnn.kernels; fastnn.ops has the same signatures.
import numbers

import numpy as np
cimport cython
cimport numpy as cnp
from libc.math cimport isfinite
from libc.stdint cimport int64_t
from libc.stdlib cimport qsort
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from fastnn._kernels cimport *

cnp.import_array()

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")  # type: tuple[str, ...]
_ACT_CODE = {name: code for code, name in enumerate(ACTIVATIONS)}
_ISA_CODE = {"generic": 0, "avx2": 1, "avx512": 2}
_REDUCTIONS = ("mean", "sum")
_MSE_REDUCTIONS = ("mean", "sum", "half_sum")


# ---- validation helpers -------------------------------------------------------------

cdef inline tuple _shape(object a):
    return a.shape


cdef inline tuple _strides(object a):
    return a.strides


cdef bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int d
    if cnp.PyArray_NDIM(a) != cnp.PyArray_NDIM(b):
        return False
    for d in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIM(a, d) != cnp.PyArray_DIM(b, d):
            return False
    return True


cdef bint _overlaps(cnp.ndarray a, cnp.ndarray b):
    """Whether the memory extents of a and b intersect: np.may_share_memory's bounds
    test, without its Python call on every kernel call."""
    cdef char *alo
    cdef char *ahi
    cdef char *blo
    cdef char *bhi
    if cnp.PyArray_SIZE(a) == 0 or cnp.PyArray_SIZE(b) == 0:
        return False
    _extent(a, &alo, &ahi)
    _extent(b, &blo, &bhi)
    return alo < bhi and blo < ahi


cdef void _extent(cnp.ndarray a, char **lo, char **hi):
    cdef char *base = <char *>cnp.PyArray_DATA(a)
    cdef Py_ssize_t low = 0, high = cnp.PyArray_ITEMSIZE(a), step
    cdef int d
    for d in range(cnp.PyArray_NDIM(a)):
        step = cnp.PyArray_STRIDE(a, d) * (cnp.PyArray_DIM(a, d) - 1)
        if step < 0:
            low += step
        else:
            high += step
    lo[0] = base + low
    hi[0] = base + high


cdef str _dtype_name(object dt):
    return np.dtype(dt).name


cdef cnp.ndarray _float_array(object x, str fn, str name, int ndim, object dtype=None):
    """x as an aligned, native-endian ndarray of float32/float64 with `ndim` dimensions
    (no copy if it is one already).

    With `dtype`, x must already have that dtype (mixed precision is an error, not a
    silent cast). ndim < 0 accepts any number of dimensions. The checks on an array that
    passes use C-level flags: this runs on every kernel call, batch-1 inference included."""
    cdef cnp.ndarray arr
    cdef int tnum
    if isinstance(x, cnp.ndarray):
        arr = <cnp.ndarray>x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:
            raise TypeError(f"{fn}: {name} must be an array of floats,"
                            f" got {type(x).__name__}") from exc
    tnum = cnp.PyArray_TYPE(arr)
    if tnum != cnp.NPY_FLOAT32 and tnum != cnp.NPY_FLOAT64:
        raise TypeError(
            f"{fn}: {name} must have dtype float32 or float64, got {_dtype_name(arr.dtype)}")
    if dtype is not None and tnum != (<cnp.dtype>dtype).type_num:
        raise TypeError(
            f"{fn}: {name} has dtype {_dtype_name(arr.dtype)}, expected {_dtype_name(dtype)} "
            f"to match the other operands")
    if ndim >= 0 and cnp.PyArray_NDIM(arr) != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got shape {_shape(arr)}")
    if not cnp.PyArray_ISNOTSWAPPED(arr):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if not cnp.PyArray_ISALIGNED(arr):
        # The C floor dereferences T* directly: a misaligned element is undefined behaviour
        # (and a fault for aligned SIMD loads), so such views are copied.
        arr = arr.copy()
    return arr


cdef double _real(object value, str fn, str name) except? -1.0:
    """A real scalar argument as a C double (bools are not numbers here)."""
    if type(value) is float:
        return <double>value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number, got {value!r}")
    return float(value)


cdef bint _non_overlapping(cnp.ndarray o):
    """Whether distinct indices of o address distinct elements: with the axes ordered by
    |stride|, each stride must step over the whole extent of the smaller ones. (Sufficient,
    not necessary: interleaved layouts that happen not to collide are refused too.)"""
    cdef list axes = sorted((abs(o.strides[d]), o.shape[d])
                            for d in range(o.ndim) if o.shape[d] > 1)
    cdef Py_ssize_t extent = o.itemsize
    for stride, size in axes:
        if stride < extent:
            return False
        extent = stride * size
    return True


cdef cnp.ndarray _contiguous(object x, str fn, str name, int ndim, object dtype=None):
    cdef cnp.ndarray arr = _float_array(x, fn, name, ndim, dtype)
    return arr if cnp.PyArray_IS_C_CONTIGUOUS(arr) else np.ascontiguousarray(arr)


cdef cnp.ndarray _strided(cnp.ndarray arr):
    """arr if its strides are whole elements (then C can use them as they are), else a copy."""
    cdef Py_ssize_t item = arr.itemsize
    cdef int d
    for d in range(arr.ndim):
        if arr.strides[d] % item != 0:
            return np.ascontiguousarray(arr)
    return arr


cdef bint _same_view(cnp.ndarray a, cnp.ndarray b):
    return (cnp.PyArray_DATA(a) == cnp.PyArray_DATA(b) and _shape(a) == _shape(b)
            and _strides(a) == _strides(b))


cdef str _label(str name, Py_ssize_t index):
    return name if index < 0 else f"{name}[{index}]"


cdef cnp.ndarray _output(object out, tuple shape, object dtype, str fn, bint contiguous,
                         tuple inputs=(), tuple alias_ok=(), str name="out",
                         Py_ssize_t index=-1):
    """A fresh output array, or the caller's `out` after checking it fits.

    `out` may be exactly one of `alias_ok` (an in-place call) but must not otherwise
    overlap any input, or the kernel would read what it has already written. Messages call
    it `name` (`name[index]` for an entry of a list of outputs)."""
    cdef cnp.ndarray o
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, cnp.ndarray):
        raise TypeError(
            f"{fn}: {_label(name, index)} must be a numpy.ndarray, got {type(out).__name__}")
    o = <cnp.ndarray>out
    if o.dtype is not dtype and o.dtype != dtype:
        raise TypeError(f"{fn}: {_label(name, index)} has dtype {_dtype_name(o.dtype)}, "
                        f"expected {_dtype_name(dtype)}")
    if not _has_shape(o, shape):
        raise ValueError(f"{fn}: {_label(name, index)} has shape {_shape(o)}, expected {shape}")
    if not cnp.PyArray_ISWRITEABLE(o):
        raise ValueError(f"{fn}: {_label(name, index)} is read-only")
    if not cnp.PyArray_ISNOTSWAPPED(o):
        raise ValueError(f"{fn}: {_label(name, index)} must be in native byte order")
    if not cnp.PyArray_ISALIGNED(o):
        raise ValueError(
            f"{fn}: {_label(name, index)} must be aligned to its {o.itemsize}-byte elements")
    if contiguous and not cnp.PyArray_IS_C_CONTIGUOUS(o):
        raise ValueError(
            f"{fn}: {_label(name, index)} must be C-contiguous, got strides {_strides(o)}")
    if not contiguous:
        for d in range(o.ndim):
            if o.strides[d] % o.itemsize != 0:
                raise ValueError(f"{fn}: {_label(name, index)} has strides {_strides(o)} that are "
                                 "not whole elements")
        if not _non_overlapping(o):
            raise ValueError(f"{fn}: {_label(name, index)} has strides {_strides(o)} for shape "
                             f"{_shape(o)}: its elements overlap")
    for x in inputs:
        if x is None:
            continue
        if _in(x, alias_ok) and _same_view(o, x):
            continue
        if _overlaps(o, <cnp.ndarray?>x):
            raise ValueError(f"{fn}: {_label(name, index)} overlaps an input array")
    return o


cdef inline bint _in(object x, tuple objs):
    """Whether x is one of objs (identity)."""
    for a in objs:
        if x is a:
            return True
    return False


cdef bint _has_shape(cnp.ndarray a, tuple shape):
    cdef int d, nd = cnp.PyArray_NDIM(a)
    if nd != len(shape):
        return False
    for d in range(nd):
        if cnp.PyArray_DIM(a, d) != <Py_ssize_t>shape[d]:
            return False
    return True


cdef inline fnn_dtype _dt(cnp.ndarray arr) noexcept nogil:
    return FNN_F32 if cnp.PyArray_ITEMSIZE(arr) == 4 else FNN_F64


cdef int _act(object name, str fn) except -1:
    try:
        return _ACT_CODE[name]
    except (KeyError, TypeError):
        raise ValueError(f"{fn}: activation must be one of {ACTIVATIONS}, got {name!r}") from None


cdef str _reduction(object reduction, str fn, tuple allowed):
    if reduction not in allowed:
        raise ValueError(f"{fn}: reduction must be one of {allowed}, got {reduction!r}")
    return reduction


# ---- runtime --------------------------------------------------------------------------

def info():
    # type: () -> dict[str, Any]
    """The instruction set the kernels use, the best one this CPU has, and the threads."""
    return {
        "isa": fnn_isa_name(fnn_get_isa()).decode(),
        "cpu_isa": fnn_isa_name(fnn_cpu_isa()).decode(),
        "threads": fnn_get_num_threads(),
    }


def fma_peak_gflops():
    # type: () -> float | None
    """Measured single-core float32 FMA limit of the ISA in use (GFLOP/s), or None on the
    generic path."""
    cdef double g
    cdef int isa = fnn_get_isa()
    with nogil:
        g = fnn_fma_peak_gflops(isa)
    return g or None


def gemm_flop_count():
    # type: () -> int
    """2*m*n*k summed over every GEMM the kernels have run in this process (all threads),
    less the columns of zeros a convolution widens some of its products with: the difference
    across a piece of code is the multiply-add work of the products it ran."""
    return fnn_gemm_flop_count()


def set_isa(name):
    # type: (str) -> None
    """Use a lower instruction-set path than the CPU's best ("generic", "avx2", "avx512")."""
    if name not in _ISA_CODE:
        raise ValueError(f"isa must be one of {tuple(_ISA_CODE)}, got {name!r}")
    if fnn_set_isa(_ISA_CODE[name]) != FNN_OK:
        raise ValueError(
            f"isa {name!r} is not supported by this CPU "
            f"(best available: {fnn_isa_name(fnn_cpu_isa()).decode()!r})")


def set_num_threads(n):
    # type: (int | np.integer) -> None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: n must be an integer >= 1, got {n!r}")
    fnn_set_num_threads(min(int(n), 1024))


def get_num_threads():
    # type: () -> int
    return fnn_get_num_threads()


def all_finite(x):
    # type: (ArrayLike) -> bool
    """Whether no element of a float32/float64 array is NaN or infinite (one pass, no
    temporaries; any layout)."""
    cdef cnp.ndarray X = _contiguous(x, "all_finite", "x", -1)
    cdef int ok
    with nogil:
        ok = fnn_all_finite(_dt(X), X.size, cnp.PyArray_DATA(X))
    return bool(ok)


# ---- GEMM ---------------------------------------------------------------------------

cdef _raise_gemm(int rc, str fn):
    if rc == FNN_ENOMEM:
        raise MemoryError(f"{fn}: could not allocate packing buffers")


def gemm(a,                      # type: ArrayLike
         b,                      # type: ArrayLike
         *,
         trans_a=False,          # type: bool
         trans_b=False,          # type: bool
         bias=None,              # type: ArrayLike | None
         activation="identity",  # type: str
         negative_slope=0.01,    # type: float
         out=None                # type: NDArray[np.floating] | None
         ):
    # type: (...) -> NDArray[np.floating]
    """act(op(a) @ op(b) + bias) for 2-D float32/float64 arrays of any layout."""
    fn = "gemm"
    cdef cnp.ndarray A = _strided(_float_array(a, "gemm", "a", 2))
    cdef cnp.ndarray B = _strided(_float_array(b, "gemm", "b", 2, A.dtype))
    cdef cnp.ndarray Bias = None
    cdef cnp.ndarray C
    cdef Py_ssize_t item = A.itemsize
    cdef Py_ssize_t m, n, k, kb, rsa, csa, rsb, csb
    cdef int act = _act(activation, "gemm")
    cdef double slope = _real(negative_slope, fn, "negative_slope")
    cdef int rc
    cdef const void *bias_ptr = NULL
    if trans_a:
        m, k = A.shape[1], A.shape[0]
        rsa, csa = A.strides[1] // item, A.strides[0] // item
    else:
        m, k = A.shape[0], A.shape[1]
        rsa, csa = A.strides[0] // item, A.strides[1] // item
    if trans_b:
        kb, n = B.shape[1], B.shape[0]
        rsb, csb = B.strides[1] // item, B.strides[0] // item
    else:
        kb, n = B.shape[0], B.shape[1]
        rsb, csb = B.strides[0] // item, B.strides[1] // item
    if kb != k:
        raise ValueError(
            f"gemm: inner dimensions differ: op(a) has shape {(m, k)}, op(b) has shape {(kb, n)}")
    if bias is not None:
        Bias = _contiguous(bias, "gemm", "bias", 1, A.dtype)
        if Bias.shape[0] != n:
            raise ValueError(f"gemm: bias must have shape {(n,)}, got {_shape(Bias)}")
        bias_ptr = cnp.PyArray_DATA(Bias)
    C = _output(out, (m, n), A.dtype, "gemm", False, (A, B, Bias))
    with nogil:
        rc = fnn_gemm(_dt(A), m, n, k,
                      cnp.PyArray_DATA(A), rsa, csa, cnp.PyArray_DATA(B), rsb, csb,
                      cnp.PyArray_DATA(C), C.strides[0] // item, C.strides[1] // item,
                      0, bias_ptr, act, slope)
    _raise_gemm(rc, fn)
    return C


# ---- Dense chains: one call per run of Dense layers ------------------------------------------
# Sequential runs each run of consecutive Dense layers (each with the elementwise activation
# after it fused in, or none) as one call, so a model pays one Python-to-C crossing per run
# instead of three or four per layer. The caller hands every array: a step is the eight
# fields of fastnn.kernels.DenseStep, (weight, bias, weight_grad, bias_grad, activation,
# negative_slope, l1, l2), and the backward is handed back the input and the outputs of its
# forward. Every argument of a call is checked before anything is written.

cdef struct _Item:
    # a chain step's scalars
    int act
    double slope, penalty_l1, penalty_l2
    # a parameter of adam_step_many: its arrays, size and update count
    fnn_dtype dt
    Py_ssize_t size
    void *param_ptr
    const void *grad_ptr
    void *exp_avg_ptr
    void *exp_avg_sq_ptr
    double count


cdef object _sequence(object seq, str fn, str name, str what):
    """A list or tuple argument, checked (indexed as it is: no copy)."""
    if type(seq) is tuple or type(seq) is list or isinstance(seq, (list, tuple)):
        return seq
    raise TypeError(f"{fn}: {name} must be a list or tuple of {what}, got {type(seq).__name__}")


cdef object _steps_arg(object steps, str fn):
    cdef object S = _sequence(steps, fn, "steps", "DenseStep")
    cdef Py_ssize_t i
    if len(S) == 0:
        raise ValueError(f"{fn}: steps is empty")
    for i in range(len(S)):
        step = S[i]
        if not (isinstance(step, tuple) and len(<tuple>step) == 8):
            raise TypeError(
                f"{fn}: steps[{i}] must be a DenseStep (weight, bias, weight_grad, bias_grad, "
                f"activation, negative_slope, l1, l2), got {type(step).__name__}")
    return S


cdef object _per_step(object seq, Py_ssize_t nsteps, str fn, str name):
    """`outs`, `outputs` or `dx_outs`: one entry per step."""
    cdef object T = _sequence(seq, fn, name, "arrays")
    if len(T) != nsteps:
        raise ValueError(f"{fn}: {name} must have one entry per step ({nsteps}), got {len(T)}")
    return T


cdef cnp.ndarray _step_bias(object b, Py_ssize_t n, object dtype, str fn, Py_ssize_t i):
    """steps[i].bias: None or (n,), contiguous."""
    if b is None:
        return None
    cdef cnp.ndarray B = _float_at(b, fn, "steps[{}].bias", i, 1, dtype)
    if not cnp.PyArray_IS_C_CONTIGUOUS(B):
        B = np.ascontiguousarray(B)
    if B.shape[0] != n:
        raise ValueError(f"{fn}: steps[{i}].bias has shape {_shape(B)}, expected {(n,)} "
                         "(the weight's rows)")
    return B


cdef int _step_act(object name, str fn, Py_ssize_t i) except -1:
    try:
        return _ACT_CODE[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"{fn}: steps[{i}].activation must be one of {ACTIVATIONS}, got {name!r}") from None


cdef double _step_real(object value, str fn, Py_ssize_t i, str field) except? -1.0:
    if type(value) is float:
        return <double>value
    return _real(value, fn, f"steps[{i}].{field}")


cdef cnp.ndarray _saved_output(object a, Py_ssize_t m, Py_ssize_t n, object dtype,
                               bint contiguous, str fn, Py_ssize_t i):
    """outputs[i] of the forward, (m, n): the next step's input, and what the step's
    activation backward reads (then contiguous)."""
    if a is None:
        raise TypeError(f"{fn}: outputs[{i}] is None, but the backward reads it")
    cdef cnp.ndarray Out = _float_at(a, fn, "outputs[{}]", i, 2, dtype)
    if Out.shape[0] != m or Out.shape[1] != n:
        raise ValueError(f"{fn}: outputs[{i}] has shape {_shape(Out)}, expected {(m, n)} "
                         f"(step {i}'s output)")
    if not contiguous:
        return _strided(Out)
    return Out if cnp.PyArray_IS_C_CONTIGUOUS(Out) else np.ascontiguousarray(Out)


# Which argument a memory span belongs to, for the message of an overlap.
cdef enum:
    ARG_X, ARG_DY, ARG_OUTS, ARG_OUTPUTS, ARG_DX_OUTS, ARG_WEIGHT, ARG_BIAS, ARG_WEIGHT_GRAD, \
        ARG_BIAS_GRAD, ARG_PARAMS, ARG_GRADS, ARG_EXP_AVGS, ARG_EXP_AVG_SQS

_SPAN_NAMES = ("x", "dy", "outs[{}]", "outputs[{}]", "dx_outs[{}]", "steps[{}].weight",
               "steps[{}].bias", "steps[{}].weight_grad", "steps[{}].bias_grad", "params[{}]",
               "grads[{}]", "exp_avgs[{}]", "exp_avg_sqs[{}]")


cdef enum:
    WRITTEN, SAVED, READ  # what a call does with an array (see _Scratch.check)


cdef struct _Span:
    char *lo
    char *hi
    int kind, role
    Py_ssize_t index, order


cdef inline bint _before(const _Span *x, const _Span *y) noexcept nogil:
    return x.lo < y.lo or (x.lo == y.lo and x.order < y.order)


cdef void _sort_spans(_Span *s, Py_ssize_t n) noexcept nogil:
    """By start, then in the order the spans were added (for stable messages): insertion
    sort for the few spans of a usual call, qsort for many."""
    cdef Py_ssize_t i, j
    cdef _Span t
    if n > 32:
        qsort(s, n, sizeof(_Span), _by_start)
        return
    for i in range(1, n):
        t = s[i]
        j = i - 1
        while j >= 0 and _before(&t, &s[j]):
            s[j + 1] = s[j]
            j -= 1
        s[j + 1] = t


cdef int _by_start(const void *a, const void *b) noexcept nogil:
    if _before(<const _Span *>a, <const _Span *>b):
        return -1
    return 1 if _before(<const _Span *>b, <const _Span *>a) else 0


@cython.freelist(4)
cdef class _Scratch:
    """A multi-array call's scratch: one _Item per step or parameter, and the memory spans
    of the call's arrays, to check that nothing the call writes overlaps anything else it
    touches. Small calls use the arrays inside the object (kept on a free list)."""
    cdef _Span *spans
    cdef _Item *items
    cdef Py_ssize_t n, cap
    cdef _Span small_spans[32]
    cdef _Item small_items[8]

    def __cinit__(self, Py_ssize_t cap, Py_ssize_t nitems):
        self.spans, self.items = &self.small_spans[0], &self.small_items[0]
        if cap > 32:
            self.spans = <_Span *>PyMem_Malloc(cap * sizeof(_Span))
        if nitems > 8:
            self.items = <_Item *>PyMem_Malloc(nitems * sizeof(_Item))
        if self.spans == NULL or self.items == NULL:
            raise MemoryError()
        self.n, self.cap = 0, cap

    def __dealloc__(self):
        if self.spans != &self.small_spans[0]:
            PyMem_Free(self.spans)
        if self.items != &self.small_items[0]:
            PyMem_Free(self.items)

    cdef int add(self, object a, int kind, int role, Py_ssize_t index) except -1:
        """Records the extent of ndarray a (nothing for None or an empty array): what the
        call does with it (`kind`), and which argument it is, for messages."""
        cdef _Span *s
        if a is None or cnp.PyArray_SIZE(<cnp.ndarray>a) == 0:
            return 0
        if self.n == self.cap:
            raise AssertionError("_Scratch: more spans than allocated")
        s = &self.spans[self.n]
        _extent(<cnp.ndarray>a, &s.lo, &s.hi)
        s.kind, s.role, s.index, s.order = kind, role, index, self.n
        self.n += 1
        return 0

    cdef int check(self, str fn) except -1:
        """Raises if a WRITTEN span overlaps any other span, or two SAVED spans (arrays an
        earlier call wrote for this one to read) overlap each other. One sort and one sweep:
        in order of start, a span overlaps an earlier one exactly when the furthest end of
        the earlier ones passes its start."""
        cdef _Span *s = self.spans
        cdef Py_ssize_t i, far_all = -1, far_written = -1, far_saved = -1, other
        _sort_spans(s, self.n)
        for i in range(self.n):
            other = -1
            if s[i].kind == WRITTEN:
                if far_all >= 0 and s[far_all].hi > s[i].lo:
                    other = far_all
            elif far_written >= 0 and s[far_written].hi > s[i].lo:
                other = far_written
            elif s[i].kind == SAVED and far_saved >= 0 and s[far_saved].hi > s[i].lo:
                other = far_saved
            if other >= 0:
                _raise_overlap(fn, &s[other], &s[i])
            if far_all < 0 or s[i].hi > s[far_all].hi:
                far_all = i
            if s[i].kind == WRITTEN and (far_written < 0 or s[i].hi > s[far_written].hi):
                far_written = i
            if s[i].kind == SAVED and (far_saved < 0 or s[i].hi > s[far_saved].hi):
                far_saved = i
        return 0


cdef int _raise_overlap(str fn, _Span *a, _Span *b) except -1:
    if b.kind == WRITTEN and a.kind != WRITTEN:
        a, b = b, a  # name what is written first
    first = _SPAN_NAMES[a.role].format(a.index)
    second = _SPAN_NAMES[b.role].format(b.index)
    if a.kind == SAVED and b.kind == SAVED:
        raise ValueError(f"{fn}: {first} overlaps {second}: the forward wrote one over the "
                         "other (give each step its own output)")
    raise ValueError(f"{fn}: {first} overlaps {second}")


cdef object _caller_array(object given, cnp.ndarray used):
    """The memory to guard: the caller's array when it is one (`used` may be a copy)."""
    return given if isinstance(given, cnp.ndarray) else used


def dense_chain_forward(x,          # type: ArrayLike
                        steps,      # type: Sequence[DenseStep]
                        outs=None   # type: Sequence[NDArray[np.floating] | None] | None
                        ):
    # type: (...) -> NDArray[np.floating]
    """act(x @ weight.T + bias) through each step in turn (a list or tuple of DenseStep), the
    bias and activation applied in the GEMM's store phase; of each step only weight, bias,
    activation and negative_slope are read. `outs`: None, or one C-contiguous array per step
    for its output (a None entry: a new array), each disjoint from the others, from x and
    from the weights and biases. Returns the last step's output. x and every step's output
    are what dense_chain_backward reads."""
    fn = "dense_chain_forward"
    cdef cnp.ndarray X = _strided(_float_array(x, fn, "x", 2))
    cdef object dtype = X.dtype
    cdef object S = _steps_arg(steps, fn)
    cdef tuple step
    cdef Py_ssize_t i, nsteps = len(S), m = X.shape[0], n, k = X.shape[1], item = X.itemsize
    cdef object Outs = None if outs is None else _per_step(outs, nsteps, fn, "outs")
    cdef list Ws = [None] * nsteps, Bs = [None] * nsteps, Cs = [None] * nsteps
    cdef cnp.ndarray W, Bias, C
    cdef _Scratch scratch = _Scratch(3 * nsteps + 1, nsteps)
    cdef _Item *items = scratch.items
    cdef const void *bias_ptr
    cdef int rc
    for i in range(nsteps):
        step = <tuple>S[i]
        W = _strided(_float_at(step[0], fn, "steps[{}].weight", i, 2, dtype))
        if W.shape[1] != k:
            raise ValueError(f"{fn}: steps[{i}].weight has shape {_shape(W)}, but the step's "
                             f"input has {k} columns")
        n = W.shape[0]
        Bias = _step_bias(step[1], n, dtype, fn, i)
        items[i].act = _step_act(step[4], fn, i)
        items[i].slope = _step_real(step[5], fn, i, "negative_slope")
        C = _output(None if Outs is None else Outs[i], (m, n), dtype, fn, True, (), (),
                    "outs", i)
        if Outs is not None:
            scratch.add(Outs[i], WRITTEN, ARG_OUTS, i)
        Ws[i], Bs[i], Cs[i] = W, Bias, C
        k = n
    if scratch.n:  # the caller's outs: check them against each other and what is read
        scratch.add(_caller_array(x, X), READ, ARG_X, 0)
        for i in range(nsteps):
            step = <tuple>S[i]
            scratch.add(_caller_array(step[0], Ws[i]), READ, ARG_WEIGHT, i)
            scratch.add(_caller_array(step[1], Bs[i]), READ, ARG_BIAS, i)
        scratch.check(fn)

    for i in range(nsteps):
        W, Bias, C = Ws[i], Bs[i], Cs[i]
        n, k = W.shape[0], W.shape[1]
        bias_ptr = _ptr_or_null(Bias)
        with nogil:
            rc = fnn_gemm(_dt(X), m, n, k,
                          cnp.PyArray_DATA(X), X.strides[0] // item, X.strides[1] // item,
                          cnp.PyArray_DATA(W), W.strides[1] // item, W.strides[0] // item,
                          cnp.PyArray_DATA(C), n, 1, 0, bias_ptr, items[i].act, items[i].slope)
        _raise_gemm(rc, fn)
        X = C
    return X


def dense_chain_backward(dy,                  # type: ArrayLike
                         steps,               # type: Sequence[DenseStep]
                         x,                   # type: ArrayLike
                         outputs,             # type: Sequence[ArrayLike | None]
                         dx_outs=None,        # type: Sequence[NDArray[np.floating] | None] | None
                         input_grad=True,     # type: bool
                         overwrite_dy=False   # type: bool
                         ):
    # type: (...) -> NDArray[np.floating] | None
    """The backward of dense_chain_forward(x, steps, outs), from dy = d loss / d (the last
    step's output). `outputs`: each step's output in that forward (its outs, the last one
    what it returned; the last may be None when the last step's activation is "identity").
    Overwrites each step's weight_grad (the l1/l2 penalty's gradient added) and bias_grad (an
    activation's derivative and the bias gradient come out of one pass) and returns
    d loss / d x, or None without `input_grad`. `dx_outs`: None, or one C-contiguous array per
    step for the gradient of its input (a None entry: a new array; the first step's is unused
    without `input_grad`). Nothing the call writes may overlap anything else it is given.
    With `overwrite_dy` the last step's activation derivative may be written over dy."""
    fn = "dense_chain_backward"
    cdef cnp.ndarray DY = _contiguous(dy, fn, "dy", 2)
    cdef object dtype = DY.dtype
    cdef object S = _steps_arg(steps, fn)
    cdef tuple step
    cdef Py_ssize_t i, nsteps = len(S), m = DY.shape[0], n, k, item = DY.itemsize
    cdef object Outputs = _per_step(outputs, nsteps, fn, "outputs")
    cdef object DXouts = None if dx_outs is None else _per_step(dx_outs, nsteps, fn, "dx_outs")
    cdef bint want_dx = input_grad
    # dy may be written over when the caller allows it, or when it is a copy made here.
    cdef bint owned = DY is not dy or bool(overwrite_dy)
    cdef cnp.ndarray X = _strided(_float_array(x, fn, "x", 2, dtype))
    cdef list Ws = [None] * nsteps, WGs = [None] * nsteps, BGs = [None] * nsteps
    cdef list Os = [None] * nsteps, DXs = [None] * nsteps
    cdef cnp.ndarray W, Bias, WG, BG, Xi, Y, D
    cdef _Scratch scratch = _Scratch(5 * nsteps + 3, nsteps)
    cdef _Item *items = scratch.items
    cdef bint dy_written
    cdef void *bg_ptr
    cdef int rc
    if X.shape[0] != m:
        raise ValueError(f"{fn}: x has shape {_shape(X)}, but dy has {m} rows")
    k = X.shape[1]
    for i in range(nsteps):
        step = <tuple>S[i]
        W = _strided(_float_at(step[0], fn, "steps[{}].weight", i, 2, dtype))
        if W.shape[1] != k:
            raise ValueError(f"{fn}: steps[{i}].weight has shape {_shape(W)}, but the step's "
                             f"input has {k} columns")
        n = W.shape[0]
        Bias = _step_bias(step[1], n, dtype, fn, i)
        WGs[i] = _state_at(step[2], W, fn, "steps[{}].weight_grad", i)
        if Bias is not None:
            BGs[i] = _state_at(step[3], Bias, fn, "steps[{}].bias_grad", i)
        elif step[3] is not None:
            raise ValueError(f"{fn}: steps[{i}].bias_grad must be None for a step without bias")
        items[i].act = _step_act(step[4], fn, i)
        items[i].slope = _step_real(step[5], fn, i, "negative_slope")
        if items[i].act == FNN_ACT_LEAKY_RELU and items[i].slope < 0:
            raise ValueError(
                f"{fn}: steps[{i}].negative_slope is {items[i].slope}: with a negative slope "
                "leaky_relu's derivative cannot be read from its output")
        items[i].penalty_l1 = _step_real(step[6], fn, i, "l1")
        items[i].penalty_l2 = _step_real(step[7], fn, i, "l2")
        if i < nsteps - 1 or items[i].act != FNN_ACT_IDENTITY:
            Os[i] = _saved_output(Outputs[i], m, n, dtype, items[i].act != FNN_ACT_IDENTITY,
                                  fn, i)
        if DXouts is not None and (i > 0 or want_dx):
            DXs[i] = _output(DXouts[i], (m, k), dtype, fn, True, (), (), "dx_outs", i)
        Ws[i] = W
        k = n
    if DY.shape[1] != k:
        raise ValueError(f"{fn}: dy has shape {_shape(DY)}, expected {(m, k)} (the last "
                         "step's output)")
    dy_written = owned and items[nsteps - 1].act != FNN_ACT_IDENTITY
    scratch.add(_caller_array(x, X), SAVED, ARG_X, 0)
    if dy_written:
        scratch.add(DY, WRITTEN, ARG_DY, 0)
    if not (dy_written and DY is dy):
        scratch.add(_caller_array(dy, DY), READ, ARG_DY, 0)
    for i in range(nsteps):
        scratch.add(WGs[i], WRITTEN, ARG_WEIGHT_GRAD, i)
        scratch.add(BGs[i], WRITTEN, ARG_BIAS_GRAD, i)
        if DXs[i] is not None:
            scratch.add(DXouts[i], WRITTEN, ARG_DX_OUTS, i)
        if Os[i] is not None:
            scratch.add(_caller_array(Outputs[i], Os[i]), SAVED, ARG_OUTPUTS, i)
        scratch.add(_caller_array((<tuple>S[i])[0], Ws[i]), READ, ARG_WEIGHT, i)
    scratch.check(fn)

    for i in range(nsteps - 1, -1, -1):
        W, WG, BG = Ws[i], WGs[i], BGs[i]
        Xi = X if i == 0 else Os[i - 1]
        n, k = W.shape[0], W.shape[1]
        bg_ptr = _ptr_or_null(BG)
        if items[i].act != FNN_ACT_IDENTITY:
            Y = Os[i]
            D = DY if owned else np.empty((m, n), dtype)
            with nogil:
                fnn_act_backward(_dt(DY), m, n, items[i].act, items[i].slope, cnp.PyArray_DATA(Y),
                                 cnp.PyArray_DATA(DY), cnp.PyArray_DATA(D), bg_ptr)
            DY = D
        elif BG is not None:
            with nogil:
                fnn_column_sum(_dt(DY), m, n, cnp.PyArray_DATA(DY), bg_ptr)
        with nogil:
            rc = fnn_gemm(_dt(DY), n, k, m, cnp.PyArray_DATA(DY), 1, n,
                          cnp.PyArray_DATA(Xi), Xi.strides[0] // item, Xi.strides[1] // item,
                          cnp.PyArray_DATA(WG), k, 1, 0, NULL, 0, 0.0)
        _raise_gemm(rc, fn)
        if items[i].penalty_l1 != 0.0 or items[i].penalty_l2 != 0.0:
            W = _contiguous(W, fn, "weight", 2)
            with nogil:
                fnn_penalty(_dt(W), W.size, cnp.PyArray_DATA(W), cnp.PyArray_DATA(WG),
                            items[i].penalty_l1, items[i].penalty_l2)
        if i == 0 and not want_dx:
            return None
        D = DXs[i] if DXs[i] is not None else np.empty((m, k), dtype)
        with nogil:
            rc = fnn_gemm(_dt(DY), m, k, n, cnp.PyArray_DATA(DY), n, 1,
                          cnp.PyArray_DATA(W), W.strides[0] // item, W.strides[1] // item,
                          cnp.PyArray_DATA(D), k, 1, 0, NULL, 0, 0.0)
        _raise_gemm(rc, fn)
        DY = D
        owned = True
    return DY


# ---- activations and bias -------------------------------------------------------------

def activation_forward(x,                    # type: ArrayLike
                       activation,           # type: str
                       *,
                       negative_slope=0.01,  # type: float
                       out=None              # type: NDArray[np.floating] | None
                       ):
    # type: (...) -> NDArray[np.floating]
    """act(x) elementwise; out may be x itself (in place)."""
    fn = "activation_forward"
    cdef cnp.ndarray X = _contiguous(x, "activation_forward", "x", -1)
    cdef int act = _act(activation, "activation_forward")
    cdef double slope = _real(negative_slope, fn, "negative_slope")
    cdef cnp.ndarray Y = _output(out, _shape(X), X.dtype, "activation_forward", True, (X,), (X,))
    with nogil:
        fnn_act_forward(_dt(X), X.size, act, slope, cnp.PyArray_DATA(X), cnp.PyArray_DATA(Y))
    return Y


def activation_backward(dy,                   # type: ArrayLike
                        y,                    # type: ArrayLike
                        activation,           # type: str
                        *,
                        negative_slope=0.01,  # type: float
                        out=None,             # type: NDArray[np.floating] | None
                        bias_grad_out=None    # type: NDArray[np.floating] | None
                        ):
    # type: (...) -> NDArray[np.floating]
    """dy * act'(.) with `y` the activation's output (the ReLU family also accepts its
    input). With `bias_grad_out` (shape (n,)), also writes the column sums of the result
    for a 2-D dy: the preceding Dense layer's bias gradient, from the same pass."""
    fn = "activation_backward"
    cdef cnp.ndarray DY = _contiguous(dy, fn, "dy", -1)
    cdef cnp.ndarray Y = _contiguous(y, fn, "y", -1, DY.dtype)
    cdef int act = _act(activation, fn)
    cdef double slope = _real(negative_slope, fn, "negative_slope")
    cdef cnp.ndarray DX, DB = None
    cdef Py_ssize_t m, n
    cdef void *db_ptr = NULL
    if _shape(Y) != _shape(DY):
        raise ValueError(f"{fn}: y has shape {_shape(Y)}, expected the shape of dy {_shape(DY)}")
    DX = _output(out, _shape(DY), DY.dtype, fn, True, (DY, Y), (DY,))
    if DY.ndim == 2:
        m, n = DY.shape[0], DY.shape[1]
    else:
        m, n = 1, DY.size
    if bias_grad_out is not None:
        if DY.ndim != 2:
            raise ValueError(f"{fn}: bias_grad_out needs a 2-D dy, got shape {_shape(DY)}")
        DB = _output(bias_grad_out, (n,), DY.dtype, fn, True, (DY, Y, DX))
        db_ptr = cnp.PyArray_DATA(DB)
    with nogil:
        fnn_act_backward(_dt(DY), m, n, act, slope, cnp.PyArray_DATA(Y), cnp.PyArray_DATA(DY),
                         cnp.PyArray_DATA(DX), db_ptr)
    return DX


def add_bias(x,         # type: ArrayLike
             bias,      # type: ArrayLike
             *,
             out=None   # type: NDArray[np.floating] | None
             ):
    # type: (...) -> NDArray[np.floating]
    """x + bias broadcast over the rows of a 2-D x; out may be x itself."""
    cdef cnp.ndarray X = _contiguous(x, "add_bias", "x", 2)
    cdef cnp.ndarray Bias = _contiguous(bias, "add_bias", "bias", 1, X.dtype)
    if Bias.shape[0] != X.shape[1]:
        raise ValueError(f"add_bias: bias must have shape {(X.shape[1],)}, got {_shape(Bias)}")
    cdef cnp.ndarray Y = _output(out, _shape(X), X.dtype, "add_bias", True, (X, Bias), (X,))
    with nogil:
        fnn_add_bias(_dt(X), X.shape[0], X.shape[1], cnp.PyArray_DATA(X), cnp.PyArray_DATA(Bias),
                     cnp.PyArray_DATA(Y))
    return Y


def column_sum(x,         # type: ArrayLike
               *,
               out=None   # type: NDArray[np.floating] | None
               ):
    # type: (...) -> NDArray[np.floating]
    """Sum over the rows of a 2-D x (the bias gradient); deterministic order."""
    cdef cnp.ndarray X = _contiguous(x, "column_sum", "x", 2)
    cdef cnp.ndarray Y = _output(out, (X.shape[1],), X.dtype, "column_sum", True, (X,))
    with nogil:
        fnn_column_sum(_dt(X), X.shape[0], X.shape[1], cnp.PyArray_DATA(X), cnp.PyArray_DATA(Y))
    return Y


def softmax(x,         # type: ArrayLike
            *,
            out=None   # type: NDArray[np.floating] | None
            ):
    # type: (...) -> NDArray[np.floating]
    """Row-wise softmax of a 2-D x (max-subtracted, stable); out may be x itself."""
    cdef cnp.ndarray X = _contiguous(x, "softmax", "x", 2)
    cdef cnp.ndarray Y = _output(out, _shape(X), X.dtype, "softmax", True, (X,), (X,))
    with nogil:
        fnn_softmax(_dt(X), X.shape[0], X.shape[1], cnp.PyArray_DATA(X), cnp.PyArray_DATA(Y))
    return Y


def softmax_backward(dy,        # type: ArrayLike
                     y,         # type: ArrayLike
                     *,
                     out=None   # type: NDArray[np.floating] | None
                     ):
    # type: (...) -> NDArray[np.floating]
    """Input gradient of a row-wise softmax from its output y: y * (dy - rowsum(dy * y))."""
    fn = "softmax_backward"
    cdef cnp.ndarray DY = _contiguous(dy, fn, "dy", 2)
    cdef cnp.ndarray Y = _contiguous(y, fn, "y", 2, DY.dtype)
    if _shape(Y) != _shape(DY):
        raise ValueError(f"{fn}: y has shape {_shape(Y)}, expected the shape of dy {_shape(DY)}")
    cdef cnp.ndarray DX = _output(out, _shape(DY), DY.dtype, fn, True, (DY, Y), (DY,))
    with nogil:
        fnn_softmax_backward(_dt(DY), DY.shape[0], DY.shape[1], cnp.PyArray_DATA(Y),
                             cnp.PyArray_DATA(DY), cnp.PyArray_DATA(DX))
    return DX


# ---- losses -----------------------------------------------------------------------------

cdef cnp.ndarray _int64_array(cnp.ndarray t):
    """t as C-contiguous, aligned int64 (C dereferences int64_t*), copied only if needed."""
    if (cnp.PyArray_TYPE(t) == cnp.NPY_INT64 and cnp.PyArray_ISNOTSWAPPED(t)
            and cnp.PyArray_ISALIGNED(t) and cnp.PyArray_IS_C_CONTIGUOUS(t)):
        return t  # the common case, without np.require's Python-level cost on every step
    return np.require(t, np.int64, ["C", "A"])


cdef cnp.ndarray _checked_int64_labels(cnp.ndarray t, Py_ssize_t k, str fn):
    """The common case of _labels in one C pass: contiguous native int64 labels."""
    cdef const int64_t *p = <const int64_t *>cnp.PyArray_DATA(t)
    cdef Py_ssize_t i, n = cnp.PyArray_DIM(t, 0)
    cdef int64_t lo = 0, hi = 0
    if n:
        lo = hi = p[0]
        for i in range(1, n):
            if p[i] < lo:
                lo = p[i]
            elif p[i] > hi:
                hi = p[i]
        if lo < 0 or hi >= k:
            for i in range(n):  # only on the error path: name the first bad label
                if p[i] < 0 or p[i] >= k:
                    raise ValueError(f"{fn}: target labels must be in [0, {k}),"
                                     f" got {p[i]} at index {i}")
    return t


cdef cnp.ndarray _labels(object target, Py_ssize_t m, Py_ssize_t k, str fn):
    """Class labels as contiguous int64 in [0, k); integral floats are accepted."""
    cdef cnp.ndarray t
    if target is None:
        raise TypeError(f"{fn}: target must be class labels of shape {(m,)} or probabilities "
                        f"of shape {(m, k)}, got None")
    try:
        t = np.asarray(target)
    except Exception as exc:
        raise TypeError(f"{fn}: target must be an array of class labels") from exc
    if t.ndim != 1 or t.shape[0] != m:
        raise ValueError(f"{fn}: target labels must have shape {(m,)}, got {_shape(t)}")
    if (cnp.PyArray_TYPE(t) == cnp.NPY_INT64 and cnp.PyArray_ISNOTSWAPPED(t)
            and cnp.PyArray_ISALIGNED(t)):
        return _checked_int64_labels(_int64_array(t), k, fn)
    if t.dtype.kind == "f":
        if not np.all(np.isfinite(t)) or np.any(t != np.floor(t)):
            bad = ~np.isfinite(t)
            bad[~bad] = t[~bad] != np.floor(t[~bad])
            i = int(np.argmax(bad))
            raise ValueError(f"{fn}: target labels must be whole numbers, got {t[i]} at index {i}")
    elif t.dtype.kind not in "iu":
        raise TypeError(f"{fn}: target labels must be integers, got dtype {_dtype_name(t.dtype)}")
    if m:
        lo, hi = t.min(), t.max()
        if lo < 0 or hi >= k:
            i = int(np.argmax((t < 0) | (t >= k)))
            raise ValueError(f"{fn}: target labels must be in [0, {k}), got {t[i]} at index {i}")
    return _int64_array(t)


def softmax_cross_entropy(logits,            # type: ArrayLike
                          target,            # type: ArrayLike
                          *,
                          reduction="mean",  # type: str
                          out=None           # type: NDArray[np.floating] | None
                          ):
    # type: (...) -> tuple[float, NDArray[np.floating]]
    """Fused stable softmax + cross-entropy on logits (m, k).

    target: class labels (m,) or probabilities (m, k). Returns (loss, grad) with grad
    d loss / d logits (written to `out` if given)."""
    fn = "softmax_cross_entropy"
    cdef cnp.ndarray X = _contiguous(logits, fn, "logits", 2)
    cdef cnp.ndarray L = None, P = None
    cdef Py_ssize_t m = X.shape[0], k = X.shape[1]
    cdef double total, scale
    _reduction(reduction, fn, _REDUCTIONS)
    if k == 0:
        raise ValueError(f"{fn}: logits must have at least one column, got shape {(m, k)}")
    if reduction == "mean" and m == 0:
        raise ValueError(f"{fn}: reduction 'mean' needs at least one row of logits")
    try:
        ndim = np.ndim(target)
    except ValueError:  # a ragged nested list
        raise TypeError(f"{fn}: target must be class labels {(m,)} or probabilities {(m, k)}, "
                        f"got a ragged (inhomogeneous) {type(target).__name__}") from None
    if ndim == 2:
        P = _contiguous(target, fn, "target", 2, X.dtype)
        if P.shape[0] != m or P.shape[1] != k:
            raise ValueError(f"{fn}: target probabilities must have shape {(m, k)},"
                             f" got {_shape(P)}")
    else:
        L = _labels(target, m, k, fn)
    cdef cnp.ndarray G = _output(out, (m, k), X.dtype, fn, True, (X, P, L))
    scale = 1.0 / m if reduction == "mean" else 1.0
    with nogil:
        if P is None:
            total = fnn_softmax_xent_labels(_dt(X), m, k, cnp.PyArray_DATA(X),
                                            <const int64_t *>cnp.PyArray_DATA(L),
                                            cnp.PyArray_DATA(G), scale)
        else:
            total = fnn_softmax_xent_probs(_dt(X), m, k, cnp.PyArray_DATA(X), cnp.PyArray_DATA(P),
                                           cnp.PyArray_DATA(G), scale)
    return total * scale, G


cdef tuple _pair(object output, object target, str fn):
    cdef cnp.ndarray X = _contiguous(output, fn, "output", -1)
    cdef cnp.ndarray T
    try:
        T = np.asarray(target)
    except Exception as exc:
        raise TypeError(f"{fn}: target must be a numeric array,"
                        f" got {type(target).__name__}") from exc
    # Strings would parse and complex numbers would lose their imaginary part in a cast.
    if T.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: target must be numeric (bool, int or float), got dtype "
                        f"{_dtype_name(T.dtype)}")
    T = np.ascontiguousarray(T, dtype=X.dtype)
    if _shape(T) != _shape(X):
        raise ValueError(f"{fn}: target has shape {_shape(T)},"
                         f" expected the output's shape {_shape(X)}")
    return X, T


cdef tuple _loss_operands(object output, object target, object reduction, object out,
                          str fn, tuple reductions):
    """(output, target, gradient buffer) of an elementwise loss, validated."""
    _reduction(reduction, fn, reductions)
    cdef cnp.ndarray X, T
    X, T = _pair(output, target, fn)
    if reduction == "mean" and X.size == 0:
        raise ValueError(f"{fn}: reduction 'mean' needs at least one element")
    return X, T, _output(out, _shape(X), X.dtype, fn, True, (X, T))


def bce_with_logits(output,            # type: ArrayLike
                    target,            # type: ArrayLike
                    *,
                    reduction="mean",  # type: str
                    out=None           # type: NDArray[np.floating] | None
                    ):
    # type: (...) -> tuple[float, NDArray[np.floating]]
    """Fused stable sigmoid + binary cross-entropy. Returns (loss, grad)."""
    fn = "bce_with_logits"
    cdef cnp.ndarray X, T, G
    X, T, G = _loss_operands(output, target, reduction, out, fn, _REDUCTIONS)
    cdef double scale = 1.0 / X.size if reduction == "mean" else 1.0
    cdef double total
    with nogil:
        total = fnn_bce_logits(_dt(X), X.size, cnp.PyArray_DATA(X), cnp.PyArray_DATA(T),
                               cnp.PyArray_DATA(G), scale)
    return total * scale, G


def mse(output,            # type: ArrayLike
        target,            # type: ArrayLike
        *,
        reduction="mean",  # type: str
        out=None           # type: NDArray[np.floating] | None
        ):
    # type: (...) -> tuple[float, NDArray[np.floating]]
    """Squared error: mean, sum, or half_sum (1/2 sum, the notes' form). Returns (loss, grad)."""
    fn = "mse"
    cdef cnp.ndarray X, T, G
    X, T, G = _loss_operands(output, target, reduction, out, fn, _MSE_REDUCTIONS)
    cdef double scale = (1.0 / X.size if reduction == "mean"
                         else 0.5 if reduction == "half_sum" else 1.0)
    cdef double total
    with nogil:
        total = fnn_mse(_dt(X), X.size, cnp.PyArray_DATA(X), cnp.PyArray_DATA(T),
                        cnp.PyArray_DATA(G), scale)
    return total * scale, G


# ---- optimizer updates -------------------------------------------------------------------

cdef cnp.ndarray _state(object arr, cnp.ndarray like, str fn, str name):
    """An optimizer's in-place array: exactly like the parameter, contiguous, writable."""
    if not isinstance(arr, cnp.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    cdef cnp.ndarray a = <cnp.ndarray>arr
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(like) or not _same_shape(a, like):
        raise ValueError(
            f"{fn}: {name} must be {_dtype_name(like.dtype)} with shape {_shape(like)}, "
            f"got {_dtype_name(a.dtype)} {_shape(a)}")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISWRITEABLE(a)
            and cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_ISALIGNED(a)):
        raise ValueError(f"{fn}: {name} must be C-contiguous, writable, aligned and "
                         "native-endian")
    return a


def sgd_step(param,             # type: NDArray[np.floating]
             grad,              # type: ArrayLike
             momentum_buffer,   # type: NDArray[np.floating] | None
             *,
             lr,                # type: float
             momentum=0.0,      # type: float
             dampening=0.0,     # type: float
             nesterov=False,    # type: bool
             weight_decay=0.0,  # type: float
             first_step=True    # type: bool
             ):
    # type: (...) -> None
    """One PyTorch SGD update of `param` (and `momentum_buffer`) in place."""
    fn = "sgd_step"
    cdef double c_lr = _real(lr, fn, "lr"), c_mom = _real(momentum, fn, "momentum")
    cdef double c_damp = _real(dampening, fn, "dampening")
    cdef double c_wd = _real(weight_decay, fn, "weight_decay")
    cdef int c_nest = bool(nesterov), c_first = bool(first_step)
    if not isinstance(param, np.ndarray):
        raise TypeError(f"{fn}: param must be a numpy.ndarray, got {type(param).__name__}")
    cdef cnp.ndarray P = _float_array(param, fn, "param", -1)
    _state(P, P, fn, "param")
    cdef cnp.ndarray G = _contiguous(grad, fn, "grad", -1, P.dtype)
    if not _same_shape(G, P):
        raise ValueError(f"{fn}: grad has shape {_shape(G)}, expected the param's {_shape(P)}")
    cdef cnp.ndarray Buf = None
    cdef void *buf_ptr = NULL
    if c_mom != 0.0:
        Buf = _state(momentum_buffer, P, fn, "momentum_buffer")
        if _overlaps(Buf, P) or _overlaps(Buf, G):
            raise ValueError(f"{fn}: momentum_buffer overlaps param or grad")
        buf_ptr = cnp.PyArray_DATA(Buf)
    if _overlaps(P, G):
        raise ValueError(f"{fn}: grad overlaps param")
    with nogil:
        fnn_sgd_step(_dt(P), P.size, cnp.PyArray_DATA(P), cnp.PyArray_DATA(G), buf_ptr,
                     c_lr, c_mom, c_damp, c_nest, c_wd, c_first)


def penalty(weight,  # type: ArrayLike
            grad,    # type: NDArray[np.floating]
            *,
            l1=0.0,  # type: float
            l2=0.0   # type: float
            ):
    # type: (...) -> float
    """Adds l1 sign(w) + 2 l2 w to grad in place; returns l1 sum|w| + l2 sum w^2."""
    fn = "penalty"
    cdef cnp.ndarray W = _contiguous(weight, fn, "weight", -1)
    cdef cnp.ndarray G = _state(grad, W, fn, "grad")
    if _overlaps(W, G):
        raise ValueError(f"{fn}: grad overlaps weight")
    cdef double c_l1 = _real(l1, fn, "l1"), c_l2 = _real(l2, fn, "l2"), total
    with nogil:
        total = fnn_penalty(_dt(W), W.size, cnp.PyArray_DATA(W), cnp.PyArray_DATA(G), c_l1, c_l2)
    return total


cdef cnp.ndarray _param(object param, str fn, str name="param"):
    """A parameter updated in place: the caller's own float32/float64 ndarray, C-contiguous,
    aligned, native-endian and writable (the update of a converted copy would be lost)."""
    if not isinstance(param, cnp.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(param).__name__}")
    cdef cnp.ndarray P = <cnp.ndarray>param
    cdef int tnum = cnp.PyArray_TYPE(P)
    if tnum != cnp.NPY_FLOAT32 and tnum != cnp.NPY_FLOAT64:
        raise TypeError(
            f"{fn}: {name} must have dtype float32 or float64, got {_dtype_name(P.dtype)}")
    return _state(P, P, fn, name)


cdef cnp.ndarray _grad(object grad, cnp.ndarray P, str fn, str name="grad"):
    cdef cnp.ndarray G = _contiguous(grad, fn, name, -1, P.dtype)
    if not _same_shape(G, P):
        raise ValueError(f"{fn}: {name} has shape {_shape(G)}, expected the param's {_shape(P)}")
    return G


cdef inline bint _writable(cnp.ndarray a):
    return (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISWRITEABLE(a)
            and cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_ISALIGNED(a))


# Entries of list arguments: the common case passes without building the entry's name
# (`template` with its index), which the full check builds only when it will raise.

cdef cnp.ndarray _param_at(object p, str fn, str template, Py_ssize_t i):
    cdef int tnum
    if isinstance(p, cnp.ndarray):
        tnum = cnp.PyArray_TYPE(<cnp.ndarray>p)
        if (tnum == cnp.NPY_FLOAT32 or tnum == cnp.NPY_FLOAT64) and _writable(<cnp.ndarray>p):
            return <cnp.ndarray>p
    return _param(p, fn, template.format(i))


cdef cnp.ndarray _state_at(object a, cnp.ndarray like, str fn, str template, Py_ssize_t i):
    if (isinstance(a, cnp.ndarray) and cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.PyArray_TYPE(like)
            and _same_shape(<cnp.ndarray>a, like) and _writable(<cnp.ndarray>a)):
        return <cnp.ndarray>a
    return _state(a, like, fn, template.format(i))


cdef cnp.ndarray _grad_at(object g, cnp.ndarray P, str fn, str template, Py_ssize_t i):
    cdef cnp.ndarray G
    if isinstance(g, cnp.ndarray):
        G = <cnp.ndarray>g
        if (cnp.PyArray_TYPE(G) == cnp.PyArray_TYPE(P) and _same_shape(G, P)
                and cnp.PyArray_IS_C_CONTIGUOUS(G) and cnp.PyArray_ISNOTSWAPPED(G)
                and cnp.PyArray_ISALIGNED(G)):
            return G
    return _grad(g, P, fn, template.format(i))


cdef cnp.ndarray _float_at(object a, str fn, str template, Py_ssize_t i, int ndim, object dtype):
    cdef cnp.ndarray arr
    if isinstance(a, cnp.ndarray):
        arr = <cnp.ndarray>a
        if (cnp.PyArray_TYPE(arr) == (<cnp.dtype>dtype).type_num
                and cnp.PyArray_NDIM(arr) == ndim and cnp.PyArray_ISNOTSWAPPED(arr)
                and cnp.PyArray_ISALIGNED(arr)):
            return arr
    return _float_array(a, fn, template.format(i), ndim, dtype)


cdef _disjoint(str fn, tuple names, tuple arrays):
    """In-place kernels read and write these arrays element by element: none may overlap
    another, or an update would read what it has just written."""
    cdef Py_ssize_t i, j
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            if arrays[i] is not None and arrays[j] is not None and _overlaps(arrays[i], arrays[j]):
                raise ValueError(f"{fn}: {names[i]} overlaps {names[j]}")


cdef void *_ptr_or_null(cnp.ndarray a):
    return NULL if a is None else cnp.PyArray_DATA(a)


cdef double _finite(object value, str fn, str name) except? -1:
    cdef double v
    if type(value) is float and isfinite(<double>value):
        return <double>value
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: {name} must be a number, got {value!r}") from None
    if not isfinite(v):
        raise ValueError(f"{fn}: {name} must be finite, got {value!r}")
    return v


cdef double _step_count(object step, str fn, str template="step", Py_ssize_t i=-1) except -1:
    if type(step) is int and step >= 1:
        return <double>step
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"{fn}: {template.format(i)} must be an integer >= 1, got {step!r}")
    return float(step)


def adagrad_step(param,             # type: NDArray[np.floating]
                 grad,              # type: ArrayLike
                 state_sum,         # type: NDArray[np.floating]
                 *,
                 lr,                # type: float
                 lr_decay=0.0,      # type: float
                 weight_decay=0.0,  # type: float
                 eps=1e-10,         # type: float
                 step=1             # type: int | np.integer
                 ):
    # type: (...) -> None
    """One PyTorch Adagrad update of `param` and `state_sum` in place; `step` counts this
    update (1 on the first)."""
    fn = "adagrad_step"
    cdef cnp.ndarray P = _param(param, fn)
    cdef cnp.ndarray G = _grad(grad, P, fn)
    cdef cnp.ndarray S = _state(state_sum, P, fn, "state_sum")
    _disjoint(fn, ("param", "grad", "state_sum"), (P, G, S))
    cdef double c_step = _step_count(step, fn)
    cdef double c_lr = _finite(lr, fn, "lr"), c_decay = _finite(lr_decay, fn, "lr_decay")
    cdef double clr = c_lr / (1.0 + (c_step - 1.0) * c_decay)
    cdef double c_wd = _finite(weight_decay, fn, "weight_decay"), c_eps = _finite(eps, fn, "eps")
    with nogil:
        fnn_adagrad_step(_dt(P), P.size, cnp.PyArray_DATA(P), cnp.PyArray_DATA(G),
                         cnp.PyArray_DATA(S), clr, c_wd, c_eps)


def rmsprop_step(param,             # type: NDArray[np.floating]
                 grad,              # type: ArrayLike
                 square_avg,        # type: NDArray[np.floating]
                 grad_avg,          # type: NDArray[np.floating] | None
                 momentum_buffer,   # type: NDArray[np.floating] | None
                 *,
                 lr,                # type: float
                 alpha=0.99,        # type: float
                 eps=1e-8,          # type: float
                 weight_decay=0.0,  # type: float
                 momentum=0.0,      # type: float
                 centered=False     # type: bool
                 ):
    # type: (...) -> None
    """One PyTorch RMSprop update in place. grad_avg is used (and required) when centered,
    momentum_buffer when momentum > 0; pass None otherwise."""
    fn = "rmsprop_step"
    cdef cnp.ndarray P = _param(param, fn)
    cdef cnp.ndarray G = _grad(grad, P, fn)
    cdef cnp.ndarray S = _state(square_avg, P, fn, "square_avg")
    cdef cnp.ndarray A = _state(grad_avg, P, fn, "grad_avg") if centered else None
    cdef double c_mom = _finite(momentum, fn, "momentum")
    cdef cnp.ndarray B = _state(momentum_buffer, P, fn, "momentum_buffer") if c_mom > 0 else None
    _disjoint(fn, ("param", "grad", "square_avg", "grad_avg", "momentum_buffer"), (P, G, S, A, B))
    cdef double c_lr = _finite(lr, fn, "lr"), c_alpha = _finite(alpha, fn, "alpha")
    cdef double c_eps = _finite(eps, fn, "eps"), c_wd = _finite(weight_decay, fn, "weight_decay")
    cdef void *a_ptr = _ptr_or_null(A)
    cdef void *b_ptr = _ptr_or_null(B)
    with nogil:
        fnn_rmsprop_step(_dt(P), P.size, cnp.PyArray_DATA(P), cnp.PyArray_DATA(G),
                         cnp.PyArray_DATA(S), a_ptr, b_ptr, c_lr, c_alpha,
                         c_eps, c_wd, c_mom)


cdef double _adam(cnp.ndarray P, object grad, object exp_avg, object exp_avg_sq, str fn,
                  double lr, double b1, double b2, double eps, double wd, int decoupled,
                  double step, int want_sum_squares) except? -1.0:
    cdef cnp.ndarray G = _grad(grad, P, fn)
    cdef cnp.ndarray M = _state(exp_avg, P, fn, "exp_avg")
    cdef cnp.ndarray V = _state(exp_avg_sq, P, fn, "exp_avg_sq")
    _disjoint(fn, ("param", "grad", "exp_avg", "exp_avg_sq"), (P, G, M, V))
    cdef double total
    with nogil:
        total = fnn_adam_step(_dt(P), P.size, cnp.PyArray_DATA(P), cnp.PyArray_DATA(G),
                              cnp.PyArray_DATA(M), cnp.PyArray_DATA(V), lr, b1, b2, eps, wd,
                              decoupled, step, want_sum_squares)
    return total


def adam_step(param,             # type: NDArray[np.floating]
              grad,              # type: ArrayLike
              exp_avg,           # type: NDArray[np.floating]
              exp_avg_sq,        # type: NDArray[np.floating]
              *,
              lr,                # type: float
              beta1=0.9,         # type: float
              beta2=0.999,       # type: float
              eps=1e-8,          # type: float
              weight_decay=0.0,  # type: float
              decoupled=False,   # type: bool
              step=1             # type: int | np.integer
              ):
    # type: (...) -> None
    """One PyTorch Adam (decoupled=False) or AdamW (decoupled=True) update in place; `step`
    counts this update (1 on the first) for the bias corrections."""
    fn = "adam_step"
    cdef cnp.ndarray P = _param(param, fn)
    cdef double c_step = _step_count(step, fn)
    _adam(P, grad, exp_avg, exp_avg_sq, fn, _finite(lr, fn, "lr"), _finite(beta1, fn, "beta1"),
          _finite(beta2, fn, "beta2"), _finite(eps, fn, "eps"),
          _finite(weight_decay, fn, "weight_decay"), bool(decoupled), c_step, 0)


def adam_step_many(params,             # type: Sequence[NDArray[np.floating]]
                   grads,              # type: Sequence[ArrayLike]
                   exp_avgs,           # type: Sequence[NDArray[np.floating]]
                   exp_avg_sqs,        # type: Sequence[NDArray[np.floating]]
                   steps,              # type: Sequence[int | np.integer]
                   *,
                   lr,                 # type: float
                   beta1=0.9,          # type: float
                   beta2=0.999,        # type: float
                   eps=1e-8,           # type: float
                   weight_decay=0.0,   # type: float
                   decoupled=False,    # type: bool
                   sum_squares=False   # type: bool
                   ):
    # type: (...) -> float
    """adam_step on every parameter in one call (lists or tuples, one entry per parameter):
    params[i] with grads[i], exp_avgs[i], exp_avg_sqs[i] and steps[i], the count of its
    updates including this one. Every argument is checked before any array is updated; what
    the call writes (params, exp_avgs, exp_avg_sqs) may overlap nothing else it is given.
    With `sum_squares`, returns sum p^2 over the parameters before the update (an L2
    penalty's value, read in the same pass), else 0.0."""
    fn = "adam_step_many"
    cdef object Ps = _sequence(params, fn, "params", "arrays")
    cdef object Gs = _sequence(grads, fn, "grads", "arrays")
    cdef object Ms = _sequence(exp_avgs, fn, "exp_avgs", "arrays")
    cdef object Vs = _sequence(exp_avg_sqs, fn, "exp_avg_sqs", "arrays")
    cdef object Ts = _sequence(steps, fn, "steps", "integers")
    cdef Py_ssize_t i, n = len(Ps)
    if len(Gs) != n or len(Ms) != n or len(Vs) != n or len(Ts) != n:
        for name, seq in (("grads", Gs), ("exp_avgs", Ms), ("exp_avg_sqs", Vs), ("steps", Ts)):
            if len(seq) != n:
                raise ValueError(f"{fn}: {len(seq)} {name} for {n} params")
    cdef double c_lr = _finite(lr, fn, "lr"), c_b1 = _finite(beta1, fn, "beta1")
    cdef double c_b2 = _finite(beta2, fn, "beta2"), c_eps = _finite(eps, fn, "eps")
    cdef double c_wd = _finite(weight_decay, fn, "weight_decay"), total = 0.0
    cdef int c_decoupled = bool(decoupled), want = bool(sum_squares)
    cdef list copies = None  # gradients converted here, alive until the updates are done
    cdef cnp.ndarray P, G, M, V
    cdef _Scratch scratch = _Scratch(4 * n, n)
    cdef _Item *items = scratch.items
    for i in range(n):
        P = _param_at(Ps[i], fn, "params[{}]", i)
        G = _grad_at(Gs[i], P, fn, "grads[{}]", i)
        M = _state_at(Ms[i], P, fn, "exp_avgs[{}]", i)
        V = _state_at(Vs[i], P, fn, "exp_avg_sqs[{}]", i)
        items[i].count = _step_count(Ts[i], fn, "steps[{}]", i)
        items[i].dt, items[i].size = _dt(P), cnp.PyArray_SIZE(P)
        items[i].param_ptr, items[i].grad_ptr = cnp.PyArray_DATA(P), cnp.PyArray_DATA(G)
        items[i].exp_avg_ptr, items[i].exp_avg_sq_ptr = cnp.PyArray_DATA(M), cnp.PyArray_DATA(V)
        if G is not Gs[i]:
            if copies is None:
                copies = []
            copies.append(G)
        scratch.add(P, WRITTEN, ARG_PARAMS, i)
        scratch.add(M, WRITTEN, ARG_EXP_AVGS, i)
        scratch.add(V, WRITTEN, ARG_EXP_AVG_SQS, i)
        scratch.add(_caller_array(Gs[i], G), READ, ARG_GRADS, i)
    scratch.check(fn)
    with nogil:
        for i in range(n):
            total += fnn_adam_step(items[i].dt, items[i].size, items[i].param_ptr,
                                   items[i].grad_ptr, items[i].exp_avg_ptr,
                                   items[i].exp_avg_sq_ptr, c_lr, c_b1, c_b2,
                                   c_eps, c_wd, c_decoupled, items[i].count, want)
    return total


def sum_squares(x):
    # type: (ArrayLike) -> float
    """sum(x**2) over all elements, accumulated in float64 (deterministic order)."""
    cdef cnp.ndarray X = _contiguous(x, "sum_squares", "x", -1)
    cdef double total
    with nogil:
        total = fnn_sum_squares(_dt(X), X.size, cnp.PyArray_DATA(X))
    return total


def scale_inplace(x,      # type: NDArray[np.floating]
                  alpha   # type: float
                  ):
    # type: (...) -> None
    """x *= alpha, in place on a C-contiguous writable float array."""
    fn = "scale_inplace"
    cdef cnp.ndarray X = _param(x, fn)
    cdef double c_alpha = _finite(alpha, fn, "alpha")
    with nogil:
        fnn_scale(_dt(X), X.size, cnp.PyArray_DATA(X), c_alpha)


# ---- toolbox layers ------------------------------------------------------------------------

cdef cnp.ndarray _vector(object v, Py_ssize_t n, object dtype, str fn, str name):
    """A per-feature input vector of n entries, contiguous, of `dtype`."""
    cdef cnp.ndarray V = _contiguous(v, fn, name, 1, dtype)
    if V.shape[0] != n:
        raise ValueError(f"{fn}: {name} must have shape {(n,)}, got {_shape(V)}")
    return V


def mask_scale(x,         # type: ArrayLike
               mask,      # type: ArrayLike
               scale,     # type: float
               *,
               out=None   # type: NDArray[np.floating] | None
               ):
    # type: (...) -> NDArray[np.floating]
    """Inverted dropout with a given mask: x * scale where mask is true, 0 elsewhere. It is
    its own backward (pass dy and the same mask). out may be x itself."""
    fn = "mask_scale"
    cdef cnp.ndarray X = _contiguous(x, fn, "x", -1)
    cdef cnp.ndarray Mk
    try:
        Mk = np.asarray(mask)
    except Exception as exc:
        raise TypeError(f"{fn}: mask must be an array of booleans") from exc
    if _shape(Mk) != _shape(X):
        raise ValueError(f"{fn}: mask has shape {_shape(Mk)}, expected the shape of x {_shape(X)}")
    if Mk.dtype.kind not in "biu":
        raise TypeError(f"{fn}: mask must be boolean or integer, got dtype {_dtype_name(Mk.dtype)}")
    # Any non-zero entry keeps its element; a bool array is read as its bytes without a copy.
    Mk = np.ascontiguousarray(Mk if Mk.dtype == np.bool_ else Mk != 0).view(np.uint8)
    cdef double c_scale = _finite(scale, fn, "scale")
    cdef cnp.ndarray Y = _output(out, _shape(X), X.dtype, fn, True, (X, Mk), (X,))
    with nogil:
        fnn_mask_scale(_dt(X), X.size, cnp.PyArray_DATA(X),
                       <const uint8_t *>cnp.PyArray_DATA(Mk), c_scale, cnp.PyArray_DATA(Y))
    return Y


def column_moments(x):
    # type: (ArrayLike) -> tuple[NDArray[np.floating], NDArray[np.floating]]
    """(mean, var): per-column mean and biased variance of a 2-D x with at least one row."""
    fn = "column_moments"
    cdef cnp.ndarray X = _contiguous(x, fn, "x", 2)
    if X.shape[0] < 1:
        raise ValueError(f"{fn}: x needs at least one row, got shape {_shape(X)}")
    cdef cnp.ndarray Mean = np.empty(X.shape[1], X.dtype), Var = np.empty(X.shape[1], X.dtype)
    with nogil:
        fnn_column_moments(_dt(X), X.shape[0], X.shape[1], cnp.PyArray_DATA(X),
                           cnp.PyArray_DATA(Mean), cnp.PyArray_DATA(Var))
    return Mean, Var


cdef tuple _channels(cnp.ndarray X, str fn, str name):
    """(m, n, s) of a batch-norm operand (m, n) or (m, n, *spatial): n channels on axis 1,
    each m runs of s elements."""
    cdef Py_ssize_t s = 1
    cdef int d
    if X.ndim < 2:
        raise ValueError(f"{fn}: {name} must be (N, C) or (N, C, ...) with the channels on "
                         f"axis 1, got shape {_shape(X)}")
    for d in range(2, X.ndim):
        s *= X.shape[d]
    return X.shape[0], X.shape[1], s


def batchnorm_train(x,             # type: ArrayLike
                    weight,        # type: ArrayLike | None
                    bias,          # type: ArrayLike | None
                    running_mean,  # type: NDArray[np.floating] | None
                    running_var,   # type: NDArray[np.floating] | None
                    *,
                    momentum=0.1,  # type: float
                    eps=1e-5,      # type: float
                    out=None       # type: NDArray[np.floating] | None
                    ):
    # type: (...) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]
    """Batch norm with the batch statistics over the channels (axis 1) of x, (N, C) or
    (N, C, ...) such as NCHW images, each channel's statistics over all other axes (at least
    2 values): y = (x - mean) / sqrt(var + eps) * weight + bias, var biased; weight/bias may
    be None. running_mean/running_var (both or neither) move towards the batch mean and the
    unbiased variance by `momentum`, in place. Returns (y, save_mean, save_invstd) for the
    backward. out may be x itself."""
    fn = "batchnorm_train"
    cdef cnp.ndarray X = _contiguous(x, fn, "x", -1)
    cdef Py_ssize_t m, n, sp
    m, n, sp = _channels(X, fn, "x")
    if m * sp < 2:
        raise ValueError(f"{fn}: batch statistics need at least 2 rows of a 2-D x (at least "
                         f"2 values per channel), got shape {_shape(X)}")
    cdef cnp.ndarray W = None if weight is None else _vector(weight, n, X.dtype, fn, "weight")
    cdef cnp.ndarray Bs = None if bias is None else _vector(bias, n, X.dtype, fn, "bias")
    cdef cnp.ndarray Mean = np.empty(n, X.dtype), Inv = np.empty(n, X.dtype)
    cdef cnp.ndarray RM = None, RV = None
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{fn}: pass both running_mean and running_var, or neither")
    if running_mean is not None:
        RM = _state(running_mean, Mean, fn, "running_mean")
        RV = _state(running_var, Mean, fn, "running_var")
    cdef cnp.ndarray Y = _output(out, _shape(X), X.dtype, fn, True, (X, W, Bs, RM, RV), (X,))
    _disjoint(fn, ("x", "weight", "bias", "running_mean", "running_var"), (X, W, Bs, RM, RV))
    _disjoint(fn, ("out", "weight", "bias", "running_mean", "running_var"), (Y, W, Bs, RM, RV))
    cdef double c_mom = _finite(momentum, fn, "momentum"), c_eps = _finite(eps, fn, "eps")
    cdef void *w_ptr = _ptr_or_null(W)
    cdef void *bs_ptr = _ptr_or_null(Bs)
    cdef void *rm_ptr = _ptr_or_null(RM)
    cdef void *rv_ptr = _ptr_or_null(RV)
    with nogil:
        fnn_batchnorm_train(_dt(X), m, n, sp, cnp.PyArray_DATA(X), w_ptr, bs_ptr,
                            c_eps, c_mom, rm_ptr, rv_ptr, cnp.PyArray_DATA(Y),
                            cnp.PyArray_DATA(Mean), cnp.PyArray_DATA(Inv))
    return Y, Mean, Inv


def batchnorm_eval(x,             # type: ArrayLike
                   weight,        # type: ArrayLike | None
                   bias,          # type: ArrayLike | None
                   running_mean,  # type: ArrayLike
                   running_var,   # type: ArrayLike
                   *,
                   eps=1e-5,      # type: float
                   out=None       # type: NDArray[np.floating] | None
                   ):
    # type: (...) -> NDArray[np.floating]
    """Batch norm with the running statistics over the channels (axis 1) of x, (N, C) or
    (N, C, ...): (x - running_mean) / sqrt(running_var + eps) * weight + bias; weight/bias
    may be None. out may be x itself."""
    fn = "batchnorm_eval"
    cdef cnp.ndarray X = _contiguous(x, fn, "x", -1)
    cdef Py_ssize_t m, n, sp
    m, n, sp = _channels(X, fn, "x")
    cdef cnp.ndarray W = None if weight is None else _vector(weight, n, X.dtype, fn, "weight")
    cdef cnp.ndarray Bs = None if bias is None else _vector(bias, n, X.dtype, fn, "bias")
    cdef cnp.ndarray RM = _vector(running_mean, n, X.dtype, fn, "running_mean")
    cdef cnp.ndarray RV = _vector(running_var, n, X.dtype, fn, "running_var")
    cdef cnp.ndarray Y = _output(out, _shape(X), X.dtype, fn, True, (X, W, Bs, RM, RV), (X,))
    cdef double c_eps = _finite(eps, fn, "eps")
    cdef void *w_ptr = _ptr_or_null(W)
    cdef void *bs_ptr = _ptr_or_null(Bs)
    with nogil:
        fnn_batchnorm_eval(_dt(X), m, n, sp, cnp.PyArray_DATA(X), w_ptr, bs_ptr, c_eps,
                           cnp.PyArray_DATA(RM), cnp.PyArray_DATA(RV), cnp.PyArray_DATA(Y))
    return Y


def batchnorm_backward(dy,                    # type: ArrayLike
                       x,                     # type: ArrayLike
                       save_mean,             # type: ArrayLike
                       save_invstd,           # type: ArrayLike
                       weight,                # type: ArrayLike | None
                       *,
                       out=None,              # type: NDArray[np.floating] | None
                       weight_grad_out=None,  # type: NDArray[np.floating] | None
                       bias_grad_out=None     # type: NDArray[np.floating] | None
                       ):
    # type: (...) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]
    """Gradients of batchnorm_train: (dx, dweight, dbias) with dweight = sum dy * xhat and
    dbias = sum dy over every axis but the channels' (written to the *_out arrays when
    given). out may be dy itself."""
    fn = "batchnorm_backward"
    cdef cnp.ndarray DY = _contiguous(dy, fn, "dy", -1)
    cdef cnp.ndarray X = _contiguous(x, fn, "x", -1, DY.dtype)
    cdef Py_ssize_t m, n, sp
    m, n, sp = _channels(DY, fn, "dy")
    if _shape(X) != _shape(DY):
        raise ValueError(f"{fn}: x has shape {_shape(X)}, expected the shape of dy {_shape(DY)}")
    cdef cnp.ndarray Mean = _vector(save_mean, n, DY.dtype, fn, "save_mean")
    cdef cnp.ndarray Inv = _vector(save_invstd, n, DY.dtype, fn, "save_invstd")
    cdef cnp.ndarray W = None if weight is None else _vector(weight, n, DY.dtype, fn, "weight")
    cdef tuple ins = (DY, X, Mean, Inv, W)
    cdef cnp.ndarray DX = _output(out, _shape(DY), DY.dtype, fn, True, ins, (DY,))
    cdef cnp.ndarray DW = _output(weight_grad_out, (n,), DY.dtype, fn, True, ins + (DX,))
    cdef cnp.ndarray DB = _output(bias_grad_out, (n,), DY.dtype, fn, True, ins + (DX, DW))
    cdef void *w_ptr = _ptr_or_null(W)
    with nogil:
        fnn_batchnorm_backward(_dt(DY), m, n, sp, cnp.PyArray_DATA(X), cnp.PyArray_DATA(Mean),
                               cnp.PyArray_DATA(Inv), w_ptr, cnp.PyArray_DATA(DY),
                               cnp.PyArray_DATA(DX), cnp.PyArray_DATA(DW), cnp.PyArray_DATA(DB))
    return DX, DW, DB


cdef Py_ssize_t _pieces(object pieces, str fn) except -1:
    if isinstance(pieces, bool) or not isinstance(pieces, (int, np.integer)) or pieces < 1:
        raise ValueError(f"{fn}: pieces must be an integer >= 1, got {pieces!r}")
    return pieces


cdef cnp.ndarray _argmax_array(object argmax, cnp.ndarray DY, Py_ssize_t limit, str what,
                               str fn):
    """argmax as int64 of dy's shape, every entry in [0, limit) (what: how limit is made)."""
    cdef cnp.ndarray Idx
    try:
        Idx = np.asarray(argmax)
    except Exception as exc:
        raise TypeError(f"{fn}: argmax must be an integer array") from exc
    if Idx.dtype.kind not in "iu":
        raise TypeError(f"{fn}: argmax must be integers, got dtype {_dtype_name(Idx.dtype)}")
    if _shape(Idx) != _shape(DY):
        raise ValueError(f"{fn}: argmax has shape {_shape(Idx)},"
                         f" expected the shape of dy {_shape(DY)}")
    if Idx.size and (Idx.min() < 0 or Idx.max() >= limit):
        raise ValueError(f"{fn}: argmax entries must be in [0, {limit}){what}, got range "
                         f"[{Idx.min()}, {Idx.max()}]")
    return _int64_array(Idx)


def maxout_forward(z,         # type: ArrayLike
                   pieces,    # type: int | np.integer
                   *,
                   out=None   # type: NDArray[np.floating] | None
                   ):
    # type: (...) -> tuple[NDArray[np.floating], NDArray[np.int64]]
    """Maxout over the columns of z (m, units * pieces), unit-major: unit u takes the max of
    columns u*pieces .. u*pieces + pieces - 1. Returns (y (m, units), argmax (m, units) int64,
    the winning piece, the first one on ties)."""
    fn = "maxout_forward"
    cdef cnp.ndarray Z = _contiguous(z, fn, "z", 2)
    cdef Py_ssize_t k = _pieces(pieces, fn)
    if Z.shape[1] % k != 0:
        raise ValueError(f"{fn}: z has {Z.shape[1]} columns, not a multiple of pieces={k}")
    cdef Py_ssize_t m = Z.shape[0], units = Z.shape[1] // k
    cdef cnp.ndarray Y = _output(out, (m, units), Z.dtype, fn, True, (Z,))
    cdef cnp.ndarray Idx = np.empty((m, units), np.int64)
    with nogil:
        fnn_maxout_forward(_dt(Z), m, units, k, cnp.PyArray_DATA(Z), cnp.PyArray_DATA(Y),
                           <int64_t *>cnp.PyArray_DATA(Idx))
    return Y, Idx


def maxout_backward(dy,        # type: ArrayLike
                    argmax,    # type: ArrayLike
                    pieces,    # type: int | np.integer
                    *,
                    out=None   # type: NDArray[np.floating] | None
                    ):
    # type: (...) -> NDArray[np.floating]
    """dz (m, units * pieces): dy routed to each unit's winning piece, zero elsewhere."""
    fn = "maxout_backward"
    cdef cnp.ndarray DY = _contiguous(dy, fn, "dy", 2)
    cdef Py_ssize_t m = DY.shape[0], units = DY.shape[1]
    cdef Py_ssize_t k = _pieces(pieces, fn)
    cdef cnp.ndarray Idx = _argmax_array(argmax, DY, k, "", fn)
    cdef cnp.ndarray DZ = _output(out, (m, units * k), DY.dtype, fn, True, (DY, Idx))
    with nogil:
        fnn_maxout_backward(_dt(DY), m, units, k, cnp.PyArray_DATA(DY),
                            <const int64_t *>cnp.PyArray_DATA(Idx), cnp.PyArray_DATA(DZ))
    return DZ


def standardize(x,         # type: ArrayLike
                mean,      # type: ArrayLike | None
                std,       # type: ArrayLike
                *,
                out=None   # type: NDArray[np.floating] | None
                ):
    # type: (...) -> NDArray[np.floating]
    """(x - mean) / std per column of a 2-D x, a zero std counting as 1 (a constant feature
    is only centred). mean=None skips the centring: standardize(dy, None, std) is the
    backward. out may be x itself."""
    fn = "standardize"
    cdef cnp.ndarray X = _contiguous(x, fn, "x", 2)
    cdef Py_ssize_t n = X.shape[1]
    cdef cnp.ndarray Mu = None if mean is None else _vector(mean, n, X.dtype, fn, "mean")
    cdef cnp.ndarray Sd = _vector(std, n, X.dtype, fn, "std")
    cdef cnp.ndarray Y = _output(out, _shape(X), X.dtype, fn, True, (X, Mu, Sd), (X,))
    cdef void *mu_ptr = _ptr_or_null(Mu)
    with nogil:
        fnn_standardize(_dt(X), X.shape[0], n, cnp.PyArray_DATA(X), mu_ptr,
                        cnp.PyArray_DATA(Sd), cnp.PyArray_DATA(Y))
    return Y


# ---- 2-D convolution ----------------------------------------------------------------------
# Images are (N, C, H, W) and weights (O, C / groups, kh, kw), PyTorch's layouts. Geometry
# arguments are pairs (height, width); padding is (top, bottom, left, right), so that "same"
# can pad unevenly. Every size reaches C as a ptrdiff_t: each is kept below 2**31 so that
# no index product of the kernels can overflow.

cdef Py_ssize_t _GEOM_MAX = 2147483647


cdef tuple _ints(object value, Py_ssize_t count, Py_ssize_t minimum, str fn, str name):
    cdef tuple items
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) != count or not all(
            not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer))
            and minimum <= v <= _GEOM_MAX for v in items):
        raise ValueError(f"{fn}: {name} must be {count} integers in [{minimum}, 2**31 - 1], "
                         f"got {value!r}")
    return tuple(int(v) for v in items)


cdef fnn_conv2d_geom _conv_geometry(cnp.ndarray X, cnp.ndarray W, object stride,
                                    object padding, object dilation, object groups,
                                    str fn) except *:
    cdef fnn_conv2d_geom g
    cdef tuple s = _ints(stride, 2, 1, fn, "stride"), d = _ints(dilation, 2, 1, fn, "dilation")
    cdef tuple p = _ints(padding, 4, 0, fn, "padding (top, bottom, left, right)")
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)) \
            or groups < 1:
        raise ValueError(f"{fn}: groups must be an integer >= 1, got {groups!r}")
    g.n, g.c, g.h, g.w = X.shape[0], X.shape[1], X.shape[2], X.shape[3]
    g.o, g.kh, g.kw = W.shape[0], W.shape[2], W.shape[3]
    g.groups = groups
    if g.c % g.groups or g.o % g.groups:
        raise ValueError(f"{fn}: groups={groups} must divide the input channels ({g.c}) and "
                         f"the weight's output channels ({g.o})")
    if W.shape[1] * g.groups != g.c or g.kh < 1 or g.kw < 1 or g.o < 1:
        raise ValueError(f"{fn}: weight must have shape (O, {g.c // g.groups}, kh, kw) with "
                         f"O, kh, kw >= 1 for x of shape {_shape(X)} and groups={groups}, "
                         f"got {_shape(W)}")
    g.sh, g.sw = s
    g.dh, g.dw = d
    g.ph, g.pw = p[0], p[2]
    cdef object span_h = g.dh * (g.kh - 1) + 1, span_w = g.dw * (g.kw - 1) + 1
    cdef object rows = g.h + p[0] + p[1], cols = g.w + p[2] + p[3]
    if rows < span_h or cols < span_w:
        raise ValueError(
            f"{fn}: x of shape {_shape(X)} padded by {p} is smaller than the dilated kernel "
            f"({span_h}, {span_w})")
    cdef object oh = (rows - span_h) // g.sh + 1, ow = (cols - span_w) // g.sw + 1
    if oh * ow * g.o > _GEOM_MAX or oh * ow * (W.shape[1] * g.kh * g.kw) > _GEOM_MAX:
        raise ValueError(f"{fn}: output of {oh} x {ow} pixels is too large for one image")
    g.oh, g.ow = oh, ow
    return g


cdef void *_conv_bias(object bias, cnp.ndarray W, list keep, str fn) except? NULL:
    cdef cnp.ndarray B
    if bias is None:
        return NULL
    B = _contiguous(bias, fn, "bias", 1, W.dtype)
    if B.shape[0] != W.shape[0]:
        raise ValueError(f"{fn}: bias must have shape {(W.shape[0],)}, got {_shape(B)}")
    keep.append(B)
    return cnp.PyArray_DATA(B)


cdef tuple _patches_shape(const fnn_conv2d_geom *g):
    return (g.n, g.groups, g.c // g.groups * g.kh * g.kw, g.oh * g.ow)


cdef _no_kept_patches(const fnn_conv2d_geom *g, object patches, str fn, str name):
    if patches is not None and not fnn_conv2d_keeps_patches(g):
        raise ValueError(f"{fn}: {name} must be None for this convolution, which keeps no "
                         f"patches (conv2d_patches_shape is None)")


def conv2d_patches_shape(x,                      # type: ArrayLike
                         weight,                 # type: ArrayLike
                         *,
                         stride=(1, 1),          # type: tuple[int, int]
                         padding=(0, 0, 0, 0),   # type: tuple[int, int, int, int]
                         dilation=(1, 1),        # type: tuple[int, int]
                         groups=1                # type: int
                         ):
    # type: (...) -> tuple[int, int, int, int] | None
    """The shape of the patch matrices conv2d_forward can keep for conv2d_backward
    ((N, groups, K, OH*OW), K = C / groups * kh * kw), or None when it forms none: a
    pointwise kernel reads x itself, a kernel with many taps has its patches read from x
    in place by the GEMM's micro-kernel, and one at stride 1 with at least twice as many
    taps as output channels copies them as runs of x that the backward rebuilds."""
    fn = "conv2d_patches_shape"
    cdef cnp.ndarray X = _contiguous(x, fn, "x", 4)
    cdef cnp.ndarray W = _contiguous(weight, fn, "weight", 4, X.dtype)
    cdef fnn_conv2d_geom g = _conv_geometry(X, W, stride, padding, dilation, groups, fn)
    return _patches_shape(&g) if fnn_conv2d_keeps_patches(&g) else None


def _set_conv_implicit_min_k(k):
    # type: (int) -> int
    """Tests' switch between the convolution's two ways of forming patches: from `k` taps
    on they are packed from the image inside the GEMM (0: always; 2**62: never; 64 by
    default). Returns the previous value."""
    return fnn_conv2d_set_implicit_min_k(k)


def conv2d_forward(x,                      # type: ArrayLike
                   weight,                 # type: ArrayLike
                   bias=None,              # type: ArrayLike | None
                   *,
                   stride=(1, 1),          # type: tuple[int, int]
                   padding=(0, 0, 0, 0),   # type: tuple[int, int, int, int]
                   dilation=(1, 1),        # type: tuple[int, int]
                   groups=1,               # type: int
                   activation="identity",  # type: str
                   negative_slope=0.01,    # type: float
                   out=None,               # type: NDArray[np.floating] | None
                   patches_out=None        # type: NDArray[np.floating] | None
                   ):
    # type: (...) -> NDArray[np.floating]
    """act(conv2d(x, weight) + bias): PyTorch's Conv2d on (N, C, H, W) images with padding
    (top, bottom, left, right). Returns (N, O, OH, OW). `patches_out`
    (conv2d_patches_shape's shape; must be None where that is None) receives the patch
    matrices, which conv2d_backward then reads instead of rebuilding."""
    fn = "conv2d_forward"
    cdef cnp.ndarray X = _contiguous(x, fn, "x", 4)
    cdef cnp.ndarray W = _contiguous(weight, fn, "weight", 4, X.dtype)
    cdef fnn_conv2d_geom g = _conv_geometry(X, W, stride, padding, dilation, groups, fn)
    cdef list keep = []
    cdef const void *b_ptr = _conv_bias(bias, W, keep, fn)
    cdef int act = _act(activation, fn)
    cdef double slope = _real(negative_slope, fn, "negative_slope")
    cdef cnp.ndarray Y = _output(out, (g.n, g.o, g.oh, g.ow), X.dtype, fn, True,
                                 (X, W) + tuple(keep))
    cdef cnp.ndarray Pk = None
    _no_kept_patches(&g, patches_out, fn, "patches_out")
    if patches_out is not None:
        Pk = _output(patches_out, _patches_shape(&g), X.dtype, fn, True, (X, W, Y) + tuple(keep),
                     (), "patches_out")
    cdef void *p_ptr = _ptr_or_null(Pk)
    cdef int rc
    with nogil:
        rc = fnn_conv2d_forward(_dt(X), &g, cnp.PyArray_DATA(X), cnp.PyArray_DATA(W), b_ptr,
                                act, slope, cnp.PyArray_DATA(Y), p_ptr)
    _raise_gemm(rc, fn)
    return Y


def conv2d_backward(dy,                      # type: ArrayLike
                    x,                       # type: ArrayLike
                    weight,                  # type: ArrayLike
                    *,
                    stride=(1, 1),           # type: tuple[int, int]
                    padding=(0, 0, 0, 0),    # type: tuple[int, int, int, int]
                    dilation=(1, 1),         # type: tuple[int, int]
                    groups=1,                # type: int
                    activation="identity",   # type: str
                    negative_slope=0.01,     # type: float
                    output=None,             # type: ArrayLike | None
                    patches=None,            # type: ArrayLike | None
                    input_grad=True,         # type: bool
                    bias_grad=True,          # type: bool
                    out=None,                # type: NDArray[np.floating] | None
                    weight_grad_out=None,    # type: NDArray[np.floating] | None
                    bias_grad_out=None       # type: NDArray[np.floating] | None
                    ):
    # type: (...) -> tuple[NDArray[np.floating] | None, NDArray[np.floating], NDArray[np.floating] | None]  # noqa: E501
    """Gradients of conv2d_forward: (dx or None, dweight, dbias or None). With an
    activation other than identity, `output` is the forward's output, through which dy
    passes first. `patches`: what conv2d_forward's patches_out kept for this x (else they
    are rebuilt; None where conv2d_patches_shape is None). dx only with input_grad, dbias
    only with bias_grad."""
    fn = "conv2d_backward"
    cdef cnp.ndarray X = _contiguous(x, fn, "x", 4)
    cdef cnp.ndarray W = _contiguous(weight, fn, "weight", 4, X.dtype)
    cdef fnn_conv2d_geom g = _conv_geometry(X, W, stride, padding, dilation, groups, fn)
    cdef tuple yshape = (g.n, g.o, g.oh, g.ow)
    cdef cnp.ndarray DY = _contiguous(dy, fn, "dy", 4, X.dtype)
    if _shape(DY) != yshape:
        raise ValueError(f"{fn}: dy must have the output's shape {yshape}, got {_shape(DY)}")
    cdef int act = _act(activation, fn)
    cdef double slope = _real(negative_slope, fn, "negative_slope")
    cdef cnp.ndarray Yf = None
    if act != FNN_ACT_IDENTITY:
        if output is None:
            raise ValueError(f"{fn}: activation={activation!r} needs the forward's output")
        Yf = _contiguous(output, fn, "output", 4, X.dtype)
        if _shape(Yf) != yshape:
            raise ValueError(f"{fn}: output must have shape {yshape}, got {_shape(Yf)}")
    cdef cnp.ndarray Pk = None
    _no_kept_patches(&g, patches, fn, "patches")
    if patches is not None:
        Pk = _contiguous(patches, fn, "patches", 4, X.dtype)
        if _shape(Pk) != _patches_shape(&g):
            raise ValueError(f"{fn}: patches must have shape {_patches_shape(&g)}, got "
                             f"{_shape(Pk)}")
    cdef tuple ins = (X, W, DY, Yf, Pk)
    cdef cnp.ndarray DX = None, DB = None
    if input_grad:
        DX = _output(out, _shape(X), X.dtype, fn, True, ins)
    cdef cnp.ndarray DW = _output(weight_grad_out, _shape(W), X.dtype, fn, True, ins + (DX,),
                                  (), "weight_grad_out")
    if bias_grad:
        DB = _output(bias_grad_out, (g.o,), X.dtype, fn, True, ins + (DX, DW), (),
                     "bias_grad_out")
    cdef void *dx_ptr = _ptr_or_null(DX)
    cdef void *db_ptr = _ptr_or_null(DB)
    cdef const void *y_ptr = _ptr_or_null(Yf)
    cdef const void *p_ptr = _ptr_or_null(Pk)
    cdef int rc
    with nogil:
        rc = fnn_conv2d_backward(_dt(X), &g, cnp.PyArray_DATA(X), cnp.PyArray_DATA(W),
                                 cnp.PyArray_DATA(DY), act, slope, y_ptr, p_ptr, dx_ptr,
                                 cnp.PyArray_DATA(DW), db_ptr)
    _raise_gemm(rc, fn)
    return DX, DW, DB


# ---- pooling -------------------------------------------------------------------------------

cdef tuple _pair_arg(object value, str fn, str name, Py_ssize_t minimum):
    """An int or a pair of ints (height, width), each in [minimum, 2**31 - 1] (as the
    convolution's: no product of two sizes can overflow in C)."""
    cdef tuple items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(
            not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer))
            and minimum <= v <= _GEOM_MAX for v in items):
        raise ValueError(f"{fn}: {name} must be an integer in [{minimum}, 2**31 - 1] or a pair "
                         f"of them (height, width), got {value!r}")
    return int(items[0]), int(items[1])


cdef fnn_window2d _window(object input_shape, object kernel_size, object stride,
                          object padding, str fn) except *:
    """The pooling geometry of NCHW images of input_shape: every size checked, every window
    holding at least one input position, the output size by floor rounding (PyTorch)."""
    cdef fnn_window2d g
    g.kh, g.kw = _pair_arg(kernel_size, fn, "kernel_size", 1)
    g.sh, g.sw = _pair_arg(stride, fn, "stride", 1)
    g.ph, g.pw = _pair_arg(padding, fn, "padding", 0)
    if 2 * g.ph > g.kh or 2 * g.pw > g.kw:
        raise ValueError(f"{fn}: padding must be at most half the kernel size, got padding "
                         f"{(g.ph, g.pw)} for kernel_size {(g.kh, g.kw)}")
    g.h, g.w = input_shape[2], input_shape[3]
    if g.h < 1 or g.w < 1:
        raise ValueError(f"{fn}: the images must have a height and width >= 1, got shape "
                         f"{tuple(input_shape)}")
    if g.h + 2 * g.ph < g.kh or g.w + 2 * g.pw < g.kw:
        raise ValueError(
            f"{fn}: images of {g.h} x {g.w} with padding {(g.ph, g.pw)} are smaller than the "
            f"window {(g.kh, g.kw)}: the output would be empty")
    g.oh = (g.h + 2 * g.ph - g.kh) // g.sh + 1
    g.ow = (g.w + 2 * g.pw - g.kw) // g.sw + 1
    return g


cdef tuple _input_shape(object input_shape, str fn):
    """input_shape (N, C, H, W) as a tuple of four ints >= 0."""
    cdef tuple shape
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"{fn}: input_shape must be a tuple (N, C, H, W), "
                        f"got {input_shape!r}") from None
    if len(shape) != 4 or not all(
            not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer)) and v >= 0
            for v in shape):
        raise ValueError(f"{fn}: input_shape must be four integers >= 0 (N, C, H, W), "
                         f"got {input_shape!r}")
    return tuple(int(v) for v in shape)


cdef cnp.ndarray _images(object x, str fn, str name, object dtype=None):
    cdef cnp.ndarray X = _float_array(x, fn, name, -1, dtype)
    if X.ndim != 4:
        raise ValueError(f"{fn}: {name} must be 4-D images (N, C, H, W), got shape {_shape(X)}")
    return X if cnp.PyArray_IS_C_CONTIGUOUS(X) else np.ascontiguousarray(X)


def maxpool2d_forward(x,                # type: ArrayLike
                      kernel_size,      # type: int | tuple[int, int]
                      stride,           # type: int | tuple[int, int]
                      padding,          # type: int | tuple[int, int]
                      *,
                      out=None,         # type: NDArray[np.floating] | None
                      argmax_out=None   # type: NDArray[np.int64] | None
                      ):
    # type: (...) -> tuple[NDArray[np.floating], NDArray[np.int64]]
    """Max pooling of NCHW images x with PyTorch's semantics: windows of kernel_size moved
    by stride, padding (at most half the kernel) on every side skipped, output size
    (H + 2 padding - kernel) // stride + 1. Returns (y, argmax): argmax the int64 index
    h * W + w of each maximum within its input plane (return_indices), the first one in
    row-major order on ties; a NaN in a window is its maximum (the first NaN)."""
    fn = "maxpool2d_forward"
    cdef cnp.ndarray X = _images(x, fn, "x")
    cdef fnn_window2d g = _window(_shape(X), kernel_size, stride, padding, fn)
    cdef tuple shape = (X.shape[0], X.shape[1], g.oh, g.ow)
    cdef cnp.ndarray Y = _output(out, shape, X.dtype, fn, True, (X,))
    cdef cnp.ndarray Idx = _output(argmax_out, shape, np.dtype(np.int64), fn, True, (X, Y),
                                   (), "argmax_out")
    cdef Py_ssize_t planes = X.shape[0] * X.shape[1]
    with nogil:
        fnn_maxpool2d_forward(_dt(X), planes, &g, cnp.PyArray_DATA(X), cnp.PyArray_DATA(Y),
                              <int64_t *>cnp.PyArray_DATA(Idx))
    return Y, Idx


def maxpool2d_backward(dy,           # type: ArrayLike
                       argmax,       # type: ArrayLike
                       input_shape,  # type: tuple[int, int, int, int]
                       *,
                       out=None      # type: NDArray[np.floating] | None
                       ):
    # type: (...) -> NDArray[np.floating]
    """dx of input_shape (N, C, H, W): zero, then dy (N, C, OH, OW) added at the argmax of
    each output (maxpool2d_forward's) in row-major order, so overlapping windows
    accumulate."""
    fn = "maxpool2d_backward"
    cdef cnp.ndarray DY = _images(dy, fn, "dy")
    cdef tuple shape = _input_shape(input_shape, fn)
    cdef fnn_window2d g
    if _shape(DY)[:2] != shape[:2]:
        raise ValueError(f"{fn}: dy has shape {_shape(DY)}, expected the images and channels "
                         f"of input_shape {shape}")
    g.h, g.w, g.oh, g.ow = shape[2], shape[3], DY.shape[2], DY.shape[3]
    cdef cnp.ndarray Idx = _argmax_array(argmax, DY, g.h * g.w, " (H * W)", fn)
    cdef cnp.ndarray DX = _output(out, shape, DY.dtype, fn, True, (DY, Idx))
    cdef Py_ssize_t planes = shape[0] * shape[1]
    with nogil:
        fnn_maxpool2d_backward(_dt(DY), planes, &g, cnp.PyArray_DATA(DY),
                               <const int64_t *>cnp.PyArray_DATA(Idx), cnp.PyArray_DATA(DX))
    return DX


def avgpool2d_forward(x,                       # type: ArrayLike
                      kernel_size,             # type: int | tuple[int, int]
                      stride,                  # type: int | tuple[int, int]
                      padding,                 # type: int | tuple[int, int]
                      count_include_pad=True,  # type: bool
                      *,
                      out=None                 # type: NDArray[np.floating] | None
                      ):
    # type: (...) -> NDArray[np.floating]
    """Average pooling of NCHW images x with PyTorch's semantics (windows and output size
    as maxpool2d_forward): each window's sum over its input positions divided, with
    count_include_pad, by the window's size clipped to the padded image, otherwise by the
    number of input positions in it."""
    fn = "avgpool2d_forward"
    cdef cnp.ndarray X = _images(x, fn, "x")
    cdef fnn_window2d g = _window(_shape(X), kernel_size, stride, padding, fn)
    cdef int c_pad = bool(count_include_pad)
    cdef cnp.ndarray Y = _output(out, (X.shape[0], X.shape[1], g.oh, g.ow), X.dtype, fn, True,
                                 (X,))
    cdef Py_ssize_t planes = X.shape[0] * X.shape[1]
    with nogil:
        fnn_avgpool2d_forward(_dt(X), planes, &g, c_pad, cnp.PyArray_DATA(X),
                              cnp.PyArray_DATA(Y))
    return Y


def avgpool2d_backward(dy,                      # type: ArrayLike
                       input_shape,             # type: tuple[int, int, int, int]
                       kernel_size,             # type: int | tuple[int, int]
                       stride,                  # type: int | tuple[int, int]
                       padding,                 # type: int | tuple[int, int]
                       count_include_pad=True,  # type: bool
                       *,
                       out=None                 # type: NDArray[np.floating] | None
                       ):
    # type: (...) -> NDArray[np.floating]
    """dx of input_shape (N, C, H, W): each output's dy divided as in avgpool2d_forward and
    added to its window's input positions, output by output in row-major order."""
    fn = "avgpool2d_backward"
    cdef cnp.ndarray DY = _images(dy, fn, "dy")
    cdef tuple shape = _input_shape(input_shape, fn)
    cdef fnn_window2d g = _window(shape, kernel_size, stride, padding, fn)
    cdef tuple want = (shape[0], shape[1], g.oh, g.ow)
    if _shape(DY) != want:
        raise ValueError(f"{fn}: dy has shape {_shape(DY)}, expected {want} (the output of "
                         f"input_shape {shape} under this window)")
    cdef int c_pad = bool(count_include_pad)
    cdef cnp.ndarray DX = _output(out, shape, DY.dtype, fn, True, (DY,))
    cdef Py_ssize_t planes = shape[0] * shape[1]
    with nogil:
        fnn_avgpool2d_backward(_dt(DY), planes, &g, c_pad, cnp.PyArray_DATA(DY),
                               cnp.PyArray_DATA(DX))
    return DX


# ---- sparse (CSR) times dense ---------------------------------------------------------
# A CSR matrix comes as its three arrays, SciPy's data, indices and indptr, with indptr's
# entries absolute positions into the other two: a batch of rows s..e is
# (data, indices, indptr[s:e + 1]), no copy. The index checks run in C in the call's
# nogil block, over the entries the rows use only, before the kernel reads a single one.

cdef cnp.ndarray _index_array(object a, str fn, str name):
    """a as a 1-D, C-contiguous, aligned, native int32 or int64 array (no copy if it is one)."""
    cdef cnp.ndarray arr
    if isinstance(a, cnp.ndarray):
        arr = <cnp.ndarray>a
    else:
        try:
            arr = np.asarray(a)
        except Exception as exc:
            raise TypeError(f"{fn}: {name} must be an array of int32 or int64,"
                            f" got {type(a).__name__}") from exc
    if not (cnp.PyArray_ISSIGNED(arr) and cnp.PyArray_ITEMSIZE(arr) in (4, 8)):
        raise TypeError(
            f"{fn}: {name} must have dtype int32 or int64, got {_dtype_name(arr.dtype)}")
    if cnp.PyArray_NDIM(arr) != 1:
        raise ValueError(f"{fn}: {name} must be 1-D, got shape {_shape(arr)}")
    if not (cnp.PyArray_ISNOTSWAPPED(arr) and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_IS_C_CONTIGUOUS(arr)):
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    return arr


cdef tuple _csr_arrays(object data, object indices, object indptr, str fn):
    """(data, indices, indptr) checked for what can be checked without reading them: the
    types, ranks and lengths; indices and indptr of one dtype, as SciPy stores them."""
    cdef cnp.ndarray D = _contiguous(data, fn, "data", 1)
    cdef cnp.ndarray Ind = _index_array(indices, fn, "indices")
    cdef cnp.ndarray Ptr = _index_array(indptr, fn, "indptr")
    if cnp.PyArray_ITEMSIZE(Ind) != cnp.PyArray_ITEMSIZE(Ptr):
        raise TypeError(f"{fn}: indices and indptr must have the same dtype (int32 or int64, "
                        f"as SciPy stores them), got {_dtype_name(Ind.dtype)} and "
                        f"{_dtype_name(Ptr.dtype)}")
    if Ind.shape[0] != D.shape[0]:
        raise ValueError(f"{fn}: indices must have the length of data, {D.shape[0]}, "
                         f"got {Ind.shape[0]}")
    if Ptr.shape[0] < 1:
        raise ValueError(f"{fn}: indptr must have at least 1 entry (rows + 1), got 0")
    return D, Ind, Ptr


cdef int _raise_csr(int rc, Py_ssize_t where, cnp.ndarray Ind, cnp.ndarray Ptr,
                    Py_ssize_t nnz, Py_ssize_t n_cols, str what, str fn) except -1:
    """The ValueError for fnn_csr_check's finding rc at `where` (what: n_cols's origin)."""
    if rc == FNN_CSR_BAD_START:
        raise ValueError(f"{fn}: indptr[0] must be >= 0, got {Ptr[0]}")
    if rc == FNN_CSR_DECREASING:
        raise ValueError(f"{fn}: indptr must be non-decreasing, got indptr[{where}] = "
                         f"{Ptr[where]} after indptr[{where - 1}] = {Ptr[where - 1]}")
    if rc == FNN_CSR_PAST_END:
        raise ValueError(f"{fn}: indptr[-1] must be <= len(data) = {nnz}, got {Ptr[where]}")
    if rc == FNN_CSR_BAD_INDEX:
        raise ValueError(f"{fn}: indices must be in [0, {n_cols}) ({what}), got "
                         f"{Ind[where]} at indices[{where}]")
    return 0


def csr_matmul(data,                   # type: ArrayLike
               indices,                # type: ArrayLike
               indptr,                 # type: ArrayLike
               b,                      # type: ArrayLike
               *,
               bias=None,              # type: ArrayLike | None
               activation="identity",  # type: str
               negative_slope=0.01,    # type: float
               out=None                # type: NDArray[np.floating] | None
               ):
    # type: (...) -> NDArray[np.floating]
    """act(A @ b + bias) for the CSR matrix A = (data, indices, indptr) of len(indptr) - 1
    rows, without densifying A: each output row is the sum of its entries' scaled rows of b,
    then the bias and the activation (gemm's). indptr holds absolute positions into data and
    indices (so indptr[s:e + 1] is the batch of rows s..e); column indices may be unsorted
    and repeated (repeats add up) and must be in [0, b.shape[0]). b is copied first unless
    C-contiguous. Rows are split among threads; the result does not depend on their number."""
    fn = "csr_matmul"
    cdef cnp.ndarray D, Ind, Ptr
    D, Ind, Ptr = _csr_arrays(data, indices, indptr, fn)
    cdef cnp.ndarray B = _contiguous(b, fn, "b", 2, D.dtype)
    cdef cnp.ndarray Bias = None
    cdef int act = _act(activation, fn)
    cdef double slope = _real(negative_slope, fn, "negative_slope")
    cdef Py_ssize_t rows = Ptr.shape[0] - 1, n_cols = B.shape[0], units = B.shape[1]
    cdef Py_ssize_t nnz = D.shape[0], where = 0
    cdef int i64 = cnp.PyArray_ITEMSIZE(Ind) == 8, rc
    cdef const void *bias_ptr = NULL
    if bias is not None:
        Bias = _contiguous(bias, fn, "bias", 1, D.dtype)
        if Bias.shape[0] != units:
            raise ValueError(f"{fn}: bias must have shape {(units,)}, got {_shape(Bias)}")
        bias_ptr = cnp.PyArray_DATA(Bias)
    cdef cnp.ndarray Out = _output(out, (rows, units), D.dtype, fn, True, (D, Ind, Ptr, B, Bias))
    with nogil:
        rc = fnn_csr_check(i64, rows, cnp.PyArray_DATA(Ptr), cnp.PyArray_DATA(Ind), nnz, n_cols,
                           &where)
        if rc == 0:
            fnn_csr_matmul(_dt(D), i64, rows, units, cnp.PyArray_DATA(D), cnp.PyArray_DATA(Ind),
                           cnp.PyArray_DATA(Ptr), cnp.PyArray_DATA(B), bias_ptr, act, slope,
                           cnp.PyArray_DATA(Out))
    _raise_csr(rc, where, Ind, Ptr, nnz, n_cols, "the rows of b", fn)
    return Out


def csr_t_matmul(data,     # type: ArrayLike
                 indices,  # type: ArrayLike
                 indptr,   # type: ArrayLike
                 b,        # type: ArrayLike
                 *,
                 out       # type: NDArray[np.floating]
                 ):
    # type: (...) -> NDArray[np.floating]
    """A^T @ b written into out (overwritten), for the CSR matrix A = (data, indices, indptr)
    of len(indptr) - 1 rows and out.shape[0] columns, b of shape (rows, units): out's row j
    sums the scaled rows of b of A's entries in column j, in storage order. The arguments
    are those of csr_matmul, with column indices in [0, out.shape[0]). Rows of out are split
    among threads; the result does not depend on their number."""
    fn = "csr_t_matmul"
    cdef cnp.ndarray D, Ind, Ptr
    D, Ind, Ptr = _csr_arrays(data, indices, indptr, fn)
    cdef cnp.ndarray B = _contiguous(b, fn, "b", 2, D.dtype)
    cdef Py_ssize_t rows = Ptr.shape[0] - 1, units = B.shape[1]
    cdef Py_ssize_t nnz = D.shape[0], where = 0, n_cols
    cdef int i64 = cnp.PyArray_ITEMSIZE(Ind) == 8, rc
    if B.shape[0] != rows:
        raise ValueError(f"{fn}: b must have len(indptr) - 1 = {rows} rows, got shape "
                         f"{_shape(B)}")
    if not isinstance(out, cnp.ndarray):
        raise TypeError(f"{fn}: out must be a numpy.ndarray of shape (n_cols, {units}), got "
                        f"{type(out).__name__}")
    if cnp.PyArray_NDIM(<cnp.ndarray>out) != 2:
        raise ValueError(f"{fn}: out has shape {_shape(out)}, expected 2-D (n_cols, {units})")
    n_cols = cnp.PyArray_DIM(<cnp.ndarray>out, 0)
    cdef cnp.ndarray Out = _output(out, (n_cols, units), D.dtype, fn, True, (D, Ind, Ptr, B))
    with nogil:
        rc = fnn_csr_check(i64, rows, cnp.PyArray_DATA(Ptr), cnp.PyArray_DATA(Ind), nnz, n_cols,
                           &where)
        if rc == 0:
            fnn_csr_t_matmul(_dt(D), i64, rows, n_cols, units, cnp.PyArray_DATA(D),
                             cnp.PyArray_DATA(Ind), cnp.PyArray_DATA(Ptr), cnp.PyArray_DATA(B),
                             cnp.PyArray_DATA(Out))
    _raise_csr(rc, where, Ind, Ptr, nnz, n_cols, "the rows of out", fn)
    return Out
