/* One element type of kernel_instances.h: FNN_IMPL with SFX = TSFX, and with SFX =
 * TSFX_avx2 in the AVX2 + FMA region; then the type's macros are undefined. */
#define SFX TSFX
#include FNN_IMPL
#undef SFX
#ifdef FNN_HAVE_AVX2_BUILD
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define SFX FNN_CAT(TSFX, avx2)
#include FNN_IMPL
#undef SFX
#pragma GCC pop_options
#endif
#undef T
#undef TSFX
#undef LOG
#undef LOG1P
#undef SQRT
#undef UINT
#undef EXP_MASK
