// dn_sgemm's kernels compiled for the avx512 level (flags from CMakeLists.txt by the file name's suffix).
#define DN_GEMM_NS avx512
#include "gemm/cpu/gemm_blocked.h"
