// The loss rows' block loops compiled for the avx2 level (flags from CMakeLists.txt by the file name's suffix).
#define DN_LOSS_NS avx2
#include "loss/cpu/loss_rows_simd.h"
