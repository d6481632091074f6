// The loss rows' block loops compiled for the scalar level (flags from CMakeLists.txt by the file name's suffix).
#define DN_LOSS_NS scalar
#include "loss/cpu/loss_rows_simd.h"
