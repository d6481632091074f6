// A 64-byte-aligned float buffer that only grows: kept per thread (static thread_local) by kernels that need scratch
// or output space on every call, so steady-state calls allocate and page-fault nothing. C++ only. Internal linkage:
// each instruction-set level's copy of a kernel file gets its own.
#ifndef DN_BUFFER_H
#define DN_BUFFER_H
#include <cstddef>
#include <cstdlib>

namespace dn_common {
namespace {
struct AlignedFloats {
  float* p = nullptr;
  std::size_t n = 0;
  // At least `want` floats, 64-byte aligned (the contents are not kept when it grows); nullptr when out of memory.
  float* get(std::size_t want) {
    if (want > n) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, (want * sizeof(float) + 63) / 64 * 64));
      n = p ? want : 0;
    }
    return p;
  }
  AlignedFloats() = default;
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  ~AlignedFloats() { std::free(p); }
};
}  // namespace
}  // namespace dn_common

#endif
