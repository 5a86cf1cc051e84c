"""Threads and the kernels' pool: kernels release the GIL (two Python threads run GEMMs in
parallel), a model shared by many threads answers as it does serially, the pool works right
after threaded NumPy and in a forked child, and results (GEMM, sum_squares, BatchNorm1d,
whole training runs) are bit-identical across kernel thread counts and across runs with
the same seed."""

import hashlib
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastnn
from fastnn import kernels


@pytest.fixture
def threads():
    """Restores the kernels' thread count after a test changes it."""
    old = fastnn.get_num_threads()
    yield fastnn.set_num_threads
    fastnn.set_num_threads(old)


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@pytest.mark.skipif(_cpus() < 2, reason="needs two CPUs")
@pytest.mark.skipif(
    os.environ.get("FASTNN_SANITIZED") == "1",
    reason="timings mean nothing under sanitizers or valgrind",
)
def test_gemm_releases_the_gil(threads):
    threads(1)  # each call single-threaded: any overlap comes from two Python threads
    rng = np.random.default_rng(0)
    a = rng.standard_normal((384, 384)).astype(np.float32)
    b = rng.standard_normal((384, 384)).astype(np.float32)
    reps = 12

    def work():
        for _ in range(reps):
            kernels.gemm(a, b)

    def one(job):
        t = time.perf_counter()
        job()
        return time.perf_counter() - t

    def two(job):
        start = threading.Barrier(2)

        def run():
            start.wait()
            job()

        ts = [threading.Thread(target=run) for _ in range(2)]
        t = time.perf_counter()
        for th in ts:
            th.start()
        for th in ts:
            th.join()
        return time.perf_counter() - t

    blob = np.random.default_rng(0).bytes(1 << 22)

    def hashing():  # hashlib releases the GIL for large buffers: the machine's own ratio
        for _ in range(8):
            hashlib.sha256(blob).digest()

    work()  # warm up packing buffers
    ratios, reference = [], []
    for _ in range(7):
        ratios.append(two(work) / one(work))
        reference.append(two(hashing) / one(hashing))
    ratios.sort()
    reference.sort()
    print(f"two threads / one thread: gemm {ratios}, GIL-free reference {reference}")
    if statistics.median(reference) > 1.5:
        pytest.skip(
            f"other jobs hold the CPUs: GIL-free hashing also runs serialised ({reference})"
        )
    # Serialised by the GIL, two threads take 2x one thread's time in every trial; in
    # parallel ~1x. On a shared machine other tenants take the second core in bursts that
    # can cover most trials, so the test asks that two of seven trials be clearly parallel,
    # which serialisation never is: serialised trials measured 1.9-2.05 on the 2-core AMD
    # EPYC Zen 3 VM, and a local CI run there saw a parallel pair at 1.46 and 1.505 with
    # the rest contended, so the bound sits between the two.
    assert ratios[1] < 1.7, (ratios, reference)


def test_concurrent_forward_equals_serial():
    rng = np.random.default_rng(1)
    model = fastnn.Sequential(
        fastnn.Dense(32, 64, rng=1),
        fastnn.ReLU(),
        fastnn.Dense(64, 64, rng=2),
        fastnn.Tanh(),
        fastnn.Dense(64, 10, rng=3),
        fastnn.Softmax(),
    )
    batches = [
        rng.standard_normal((int(rng.integers(1, 300)), 32)).astype(np.float32) for _ in range(64)
    ]
    serial = [model.forward(x) for x in batches]
    start = threading.Barrier(8)

    def run(i):
        if i < 8:
            start.wait()
        return model.predict(batches[i])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(len(batches))))
    for got, want in zip(results, serial):
        np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(_cpus() < 2, reason="needs two CPUs")
@pytest.mark.skipif(
    os.environ.get("FASTNN_SANITIZED") == "1",
    reason="timings mean nothing under sanitizers or valgrind",
)
def test_threaded_call_right_after_threaded_numpy_is_not_held_up(threads):
    """NumPy's OpenBLAS threads keep spinning on the cores for a while after a threaded
    call. A two-thread GEMM right after one takes less than twice its one-thread time:
    the caller never waits for a worker that has not started, so it can lose the second
    core but not the first."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((128, 784)).astype(np.float32)
    w = rng.standard_normal((256, 784)).astype(np.float32)
    sq = rng.standard_normal((384, 384)).astype(np.float32)
    one, after = [], []
    for _ in range(15):
        threads(1)
        t = time.perf_counter()
        kernels.gemm(x, w, trans_b=True)
        one.append(time.perf_counter() - t)
        threads(2)
        sq @ sq  # threaded in NumPy's BLAS (unless it is pinned to one thread)
        t = time.perf_counter()
        kernels.gemm(x, w, trans_b=True)
        after.append(time.perf_counter() - t)
    ratio = statistics.median(after) / statistics.median(one)
    assert ratio < 2.0, (ratio, sorted(after), sorted(one))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_threaded_kernels_work_in_a_forked_child(threads):
    """The child of a fork has none of its parent's threads: its pool starts afresh (an
    OpenMP runtime used before the fork hangs there instead)."""
    threads(2)
    rng = np.random.default_rng(4)
    a = rng.standard_normal((256, 700)).astype(np.float32)
    b = rng.standard_normal((700, 300)).astype(np.float32)
    want = kernels.gemm(a, b)  # the parent's workers exist now
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            code = 0 if all(np.array_equal(kernels.gemm(a, b), want) for _ in range(20)) else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung in a threaded kernel")


def test_concurrent_threaded_calls_equal_serial(threads):
    """Python threads calling threaded kernels at once (the kernels release the GIL): one of
    them has the pool's workers at a time, the others run on their own thread, and every
    result has the bits of a serial run."""
    threads(2)
    rng = np.random.default_rng(5)
    jobs = [
        (
            rng.standard_normal((int(rng.integers(40, 200)), 500)).astype(np.float32),
            rng.standard_normal((300, 500)).astype(np.float32),
        )
        for _ in range(24)
    ]
    params = [rng.standard_normal(150_000).astype(np.float32) for _ in range(24)]
    grads = [rng.standard_normal(150_000).astype(np.float32) for _ in range(24)]

    def run(i, p):
        buf = np.zeros_like(p)
        for _ in range(3):
            kernels.sgd_step(p, grads[i], buf, lr=0.01, momentum=0.9, first_step=False)
        return kernels.gemm(*jobs[i], trans_b=True), p

    serial = [run(i, params[i].copy()) for i in range(24)]
    start = threading.Barrier(6)

    def concurrent(i):
        if i < 6:
            start.wait()
        return run(i, params[i].copy())

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(concurrent, range(24)))
    for (got_c, got_p), (want_c, want_p) in zip(results, serial):
        np.testing.assert_array_equal(got_c, want_c)
        np.testing.assert_array_equal(got_p, want_p)


def _train(seed, n_threads, epochs=2):
    """A problem large enough that GEMMs and optimizer updates split across threads."""
    fastnn.set_num_threads(n_threads)
    rng = np.random.default_rng(123)
    X = rng.standard_normal((1024, 96)).astype(np.float32)
    y = (X[:, :10].argmax(axis=1) + (X[:, 10] > 0)) % 10
    model = fastnn.Sequential(
        fastnn.Dense(96, 512, rng=4),
        fastnn.ReLU(),
        fastnn.Dense(512, 256, rng=5),
        fastnn.Tanh(),
        fastnn.Dense(256, 10, rng=6),
    )
    opt = fastnn.optim.SGD(model, lr=0.05, momentum=0.9)
    hist = model.fit(
        X,
        y,
        loss=fastnn.SoftmaxCrossEntropy(),
        optimizer=opt,
        epochs=epochs,
        batch_size=256,
        seed=seed,
    )
    return model.state_dict(), hist.history["loss"]


def test_training_is_bit_identical_across_thread_counts_and_runs(threads):
    w1, loss1 = _train(seed=7, n_threads=1)
    w2, loss2 = _train(seed=7, n_threads=2)
    w2b, loss2b = _train(seed=7, n_threads=2)
    assert loss1 == loss2 == loss2b
    for key in w1:
        np.testing.assert_array_equal(w1[key], w2[key], err_msg=f"{key}: 1 vs 2 threads")
        np.testing.assert_array_equal(w2[key], w2b[key], err_msg=f"{key}: two runs")
    # and the seed matters (the test would pass vacuously if shuffling were ignored)
    w3, _ = _train(seed=8, n_threads=2, epochs=1)
    w1_one, _ = _train(seed=7, n_threads=2, epochs=1)
    assert not np.array_equal(w3["0.weight"], w1_one["0.weight"])


@pytest.mark.parametrize(
    "m,n,trans_b",
    [(512, 300, False), (32, 256, False), (32, 300, True), (100, 300, True)],
    ids=["packed", "packed-short-tiles", "transposed-tile", "transposed-tile-deep"],
)
def test_gemm_large_enough_to_thread_is_bit_identical(threads, m, n, trans_b):
    # The training test above relies on this: output tiles are split, never the sum.
    rng = np.random.default_rng(2)
    a = rng.standard_normal((m, 700)).astype(np.float32)
    b = rng.standard_normal((n, 700) if trans_b else (700, n)).astype(np.float32)
    threads(1)
    one = kernels.gemm(a, b, trans_b=trans_b)
    threads(2)
    two = kernels.gemm(a, b, trans_b=trans_b)
    np.testing.assert_array_equal(one, two)


@pytest.mark.usefixtures("isa")
def test_sum_squares_independent_of_threads():
    x = np.random.default_rng(2).standard_normal(1_000_003)
    n = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        one = kernels.sum_squares(x)
        kernels.set_num_threads(4)
        assert kernels.sum_squares(x) == one
    finally:
        kernels.set_num_threads(n)


@pytest.mark.usefixtures("isa")
def test_threads_do_not_change_batchnorm():
    x = np.random.default_rng(9).standard_normal((2000, 300))
    n = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        one = kernels.batchnorm_train(x, None, None, None, None)
        dx1 = kernels.batchnorm_backward(x, x, one[1], one[2], None)
        kernels.set_num_threads(4)
        many = kernels.batchnorm_train(x, None, None, None, None)
        dxn = kernels.batchnorm_backward(x, x, many[1], many[2], None)
    finally:
        kernels.set_num_threads(n)
    for a, b in zip(one + dx1, many + dxn):
        np.testing.assert_array_equal(a, b)
