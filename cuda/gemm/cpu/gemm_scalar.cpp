// dn_sgemm's kernels compiled for the scalar level (flags from CMakeLists.txt by the file name's suffix).
#define DN_GEMM_NS scalar
#include "gemm/cpu/gemm_blocked.h"
