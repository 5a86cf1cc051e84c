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
