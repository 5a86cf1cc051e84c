/* Runtime state shared by every kernel: which instruction set to use and how many
 * threads. Atomics because Python may change either while another thread computes. */
#include <stdatomic.h>

#include "fastnn.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* XCR0 says which register files the OS saves on a context switch; a CPU may report
 * AVX-512 while the OS (or a hypervisor) leaves the zmm state disabled. Not every
 * compiler's __builtin_cpu_supports checks this, so it is checked here. */
static unsigned long long xcr0(void)
{
    unsigned int lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" /* xgetbv */ : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int probe_isa(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE))
        return FNN_ISA_GENERIC;
    unsigned long long x = xcr0();
    int os_ymm = (x & 0x06) == 0x06;  /* xmm + ymm state */
    int os_zmm = (x & 0xe6) == 0xe6;  /* + opmask, zmm0-15 upper halves, zmm16-31 */
    __builtin_cpu_init();
    if (!os_ymm || !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return FNN_ISA_GENERIC;
    if (os_zmm && __builtin_cpu_supports("avx512f"))
        return FNN_ISA_AVX512;
    return FNN_ISA_AVX2;
}
#else
static int probe_isa(void) { return FNN_ISA_GENERIC; }
#endif

static atomic_int cpu_isa = -1;      /* -1: not probed yet */
static atomic_int chosen_isa = -1;   /* -1: best available */
static atomic_int num_threads = 1;

int fnn_cpu_isa(void)
{
    int isa = atomic_load_explicit(&cpu_isa, memory_order_relaxed);
    if (isa < 0) {
        isa = probe_isa();
        atomic_store_explicit(&cpu_isa, isa, memory_order_relaxed);
    }
    return isa;
}

int fnn_get_isa(void)
{
    int isa = atomic_load_explicit(&chosen_isa, memory_order_relaxed);
    return isa < 0 ? fnn_cpu_isa() : isa;
}

int fnn_set_isa(int isa)
{
    if (isa < FNN_ISA_GENERIC || isa > fnn_cpu_isa())
        return FNN_EINVAL;
    atomic_store_explicit(&chosen_isa, isa, memory_order_relaxed);
    return FNN_OK;
}

const char *fnn_isa_name(int isa)
{
    switch (isa) {
    case FNN_ISA_GENERIC: return "generic";
    case FNN_ISA_AVX2: return "avx2";
    case FNN_ISA_AVX512: return "avx512";
    default: return "unknown";
    }
}

int fnn_get_num_threads(void)
{
    return atomic_load_explicit(&num_threads, memory_order_relaxed);
}

void fnn_set_num_threads(int n)
{
    atomic_store_explicit(&num_threads, n < 1 ? 1 : n, memory_order_relaxed);
}
