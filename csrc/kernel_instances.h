/* Instantiates the kernel template named by FNN_IMPL (a header) for float and double, and
 * on x86 again inside an AVX2 + FMA pragma region, so the source needs no -m flags. The
 * functions get the suffixes f32, f64 and f32_avx2, f64_avx2; FNN_DISPATCH(name, ...)
 * calls the one for `dt` (a variable of the caller) and the ISA in use. fnn_get_isa()
 * honours FASTNN_ISA, so forcing "generic" runs the baseline build. The wider build pays
 * where kernels wait on divisions and square roots (the adaptive optimizers) and in the
 * streaming passes that SSE2 splits into twice as many instructions. */
#include "kernel_common.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define FNN_HAVE_AVX2_BUILD 1
#endif

#define T float
#define TSFX f32
#define LOG logf
#define LOG1P log1pf
#define SQRT sqrtf
#define UINT uint32_t
#define EXP_MASK UINT32_C(0x7f800000)
#include "kernel_instance_type.h"

#define T double
#define TSFX f64
#define LOG log
#define LOG1P log1p
#define SQRT sqrt
#define UINT uint64_t
#define EXP_MASK UINT64_C(0x7ff0000000000000)
#include "kernel_instance_type.h"

#ifdef FNN_HAVE_AVX2_BUILD
#define FNN_DISPATCH(name, ...)                                                          \
    (fnn_get_isa() >= FNN_ISA_AVX2                                                      \
         ? (dt == FNN_F32 ? name##_f32_avx2(__VA_ARGS__) : name##_f64_avx2(__VA_ARGS__)) \
         : (dt == FNN_F32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__)))
#else
#define FNN_DISPATCH(name, ...) \
    (dt == FNN_F32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))
#endif
