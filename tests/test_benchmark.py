"""fastnn.benchmark, shared by `fastnn bench` and bench/: the host description (JSON, with a
warning for OpenBLAS pins), FLOP counts, interleaved timing, paired ratios and the lines
that judge the targets."""

import fastnn


def test_host_info_is_json_and_warns_of_openblas_pins(monkeypatch):
    import json

    from fastnn import benchmark as B

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")
    fma = B.FmaLimit(probe=False)
    fma.readings = [50.0, 60.0]
    info = B.host_info(fma=fma, threads=2)
    json.dumps(info)
    assert info["fma_peak_gflops"] == 60.0 and info["threads"] == 2
    assert set(info["cpu"]["flags"]) == {"avx2", "fma", "avx512f"}
    assert info["isa"] == fastnn.kernels.info()["isa"]
    lines = "\n".join(B.host_lines(info))
    assert "60.0 GFLOP/s per core, 120.0 for 2 thread(s) (larger of 2 probes)" in lines
    assert "WARNING: OPENBLAS_CORETYPE=Prescott" in lines
    assert "the larger of the probes before and after the run: 50.0, 60.0" in fma.line(2)


def test_benchmark_helpers():
    from fastnn import benchmark as B

    assert B.mlp_flops((784, 256, 256, 10), 128) == 155_058_176  # PERFORMANCE.md: 155 MFLOP
    assert B.mlp_flops((784, 256, 256, 10), 1, training=False) == 537_600
    calls = []
    times = B.interleave(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        0.0,
        block=2,
        min_rounds=3,
        warmup=1,
    )
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert len(times["a"]) == len(times["b"]) == 3
    assert B.paired_ratio({"a": [2.0, 4.0, 9.0], "b": [1.0, 1.0, 3.0]}, "a", "b") == 3.0
    t = B.Targets()
    assert t.line("x", 1.0999, 1.1).endswith("1.09x >= 1.10x: NOT met")
    assert t.line("floor", 0.8497, 0.85, unit="%").endswith("84.9% >= 85%: NOT met")
    assert t.line("latency", 0.8, 0.8, at_most=True).endswith(": met")
    assert t.summary().startswith("targets (PERFORMANCE.md) met: 1 of 3")


def test_conv_twin_and_flops_match_the_kernel():
    """fastnn bench's convolution rows: NumPy's im2col twin computes the fused kernel's
    output, and conv_flops is the GEMM work the kernel counts."""
    import numpy as np

    from fastnn import benchmark as B
    from fastnn import kernels

    assert [row[0] for row in B.CONV_SHAPES] == [
        "LeNet-5 conv2",
        "conv16-32 conv2",
        "conv32-64 conv2",
    ]
    assert B.conv_flops(64, 32, 64, 3, 0, 26, 26) == 2 * 64 * 64 * 24 * 24 * 32 * 9
    rng = np.random.default_rng(0)
    for _name, _batch, c, o, k, p, h, w in B.CONV_SHAPES:
        x = rng.standard_normal((2, c, h, w)).astype(np.float32)
        weight = rng.standard_normal((o, c, k, k)).astype(np.float32)
        bias = rng.standard_normal(o).astype(np.float32)
        before = kernels.gemm_flop_count()
        expected = kernels.conv2d_forward(x, weight, bias, padding=(p,) * 4, activation="relu")
        assert kernels.gemm_flop_count() - before == B.conv_flops(2, c, o, k, p, h, w)
        out = np.full(expected.shape, np.nan, np.float32)
        twin = B.numpy_conv_relu(x, weight, bias, p, out)
        for _ in range(2):  # its buffers are reused
            assert twin() is out
            np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_bench_prints_the_conv_rows_quick():
    """`fastnn bench` in quick mode: the GEMM table, then one row per CNN's main convolution
    with both GFLOP/s, the paired ratio and (with an FMA limit) the two fractions of it."""
    from fastnn import benchmark as B

    lines = []
    geo = B.run(seconds=0.0, threads=1, print_fn=lines.append)
    assert geo > 0
    text = "\n".join(lines)
    assert "conv forward, batch 64" in text and "NumPy: im2col and matmul" in text
    rows = [line.split() for line in lines if " conv2 " in line]
    assert [row[0] for row in rows] == ["LeNet-5", "conv16-32", "conv32-64"]
    peak = fastnn.kernels.fma_peak_gflops()
    for row in rows:
        numbers = row[row.index("conv2") + 5 :]
        assert len(numbers) == (5 if peak else 3), row
        assert all(float(v.rstrip("%")) > 0 for v in numbers), row
    assert lines[-1].startswith("targets (PERFORMANCE.md) met: ")
