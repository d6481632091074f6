// Internal helpers of the engine orchestrators (model.cpp, moe.cpp): activation buffers that grow to the
// largest batch and are then reused, a scoped per-op timer, and early return on a failed status.
#pragma once
#include <omp.h>

#include <cstdint>
#include <vector>

#include "common/dn_common.h"

namespace dn_engine {
using Buf = std::vector<float>;

inline float* ensure(Buf& b, int64_t n) {
  if ((int64_t)b.size() < n) b.resize((size_t)n);
  return b.data();
}

// Adds the wall time of its scope to *slot.
struct Timer {
  double* slot;
  double t0;
  explicit Timer(double* s) : slot(s), t0(omp_get_wtime()) {}
  ~Timer() { *slot += omp_get_wtime() - t0; }
};
}  // namespace dn_engine

#define DN_TRY(expr)              \
  do {                            \
    dn_status _st = (expr);       \
    if (_st != DN_OK) return _st; \
  } while (0)
