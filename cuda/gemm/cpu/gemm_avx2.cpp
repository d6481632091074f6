// dn_sgemm's kernels compiled for the avx2 level (flags from CMakeLists.txt by the file name's suffix).
#define DN_GEMM_NS avx2
#include "gemm/cpu/gemm_blocked.h"
