/* Probe of this core's float32 FMA throughput limit, so that `fastnn bench` can report GEMM
 * speed as a fraction of what the machine can do. Twelve independent accumulator chains hide
 * the FMA latency on current x86 cores (2 FMA pipes x 4-5 cycles). */
#include <time.h>
#include "fastnn.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FNN_X86 1
#endif

#define CHAINS 12
#define BODY(T, FMA, SET1, ADD, REDUCE)                                                  \
    T acc[CHAINS];                                                                     \
    const T a = SET1(0.999999f), b = SET1(1e-7f);                                      \
    for (int c = 0; c < CHAINS; c++) acc[c] = SET1((float)c);                          \
    for (long i = 0; i < iters; i++) {                                                 \
        for (int c = 0; c < CHAINS; c++) acc[c] = FMA(acc[c], a, b);                   \
    }                                                                                  \
    T s = acc[0];                                                                      \
    for (int c = 1; c < CHAINS; c++) s = ADD(s, acc[c]);                               \
    return REDUCE(s);

#ifdef FNN_X86
__attribute__((target("avx2,fma"))) static float fma_loop_avx2(long iters)
{
    BODY(__m256, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_add_ps, _mm256_cvtss_f32)
}

__attribute__((target("avx512f"))) static float fma_loop_avx512(long iters)
{
    BODY(__m512, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_add_ps, _mm512_cvtss_f32)
}
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Best of several timed runs: the boost clock and a shared host make single runs noisy. */
double fnn_fma_peak_gflops(int isa)
{
#ifdef FNN_X86
    const int lanes = isa == FNN_ISA_AVX512 ? 16 : isa == FNN_ISA_AVX2 ? 8 : 0;
    const long iters = 2000000;
    volatile float sink = 0;
    double best = 0;
    if (!lanes || isa > fnn_cpu_isa()) return 0.0;
    for (int rep = 0; rep < 7; rep++) {
        const double t0 = now();
        sink += isa == FNN_ISA_AVX512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
        const double gflops = 2.0 * lanes * CHAINS * (double)iters / (now() - t0) / 1e9;
        best = gflops > best ? gflops : best;
    }
    (void)sink;
    return best;
#else
    (void)isa;
    return 0.0;
#endif
}
