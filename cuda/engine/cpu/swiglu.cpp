// SwiGLU gate over rows of the fused W1|W3 projection: au rows [a | u] (stride 2f) → m = silu(a) ⊙ u,
// and its backward into [da | du] rows (dn_engine.h).
// No FP-exception semantics are needed here; without this GCC will not if-convert (and so not
// vectorize) the clamps inside dn_fast_exp.
#pragma GCC optimize("no-trapping-math")
#include <omp.h>

#include "common/dn_simd.h"
#include "engine/dn_engine.h"

namespace {
// Each input stream is fetched this far ahead (16 KiB, about 2.7 rows of [a | u]), a line at a time, into L2: au is
// written by the projection's GEMM and read here after megabytes of other traffic, mostly from memory, and the
// hardware prefetchers alone kept one core at about 60% of a memcpy's rate (AMD EPYC Zen 4, 8 layers' cold buffers in
// a harness outside the tree: forward 5.8 → 4.0 ms, backward 7.6 → 6.5 ms with 4 KiB into L1). Into L2 and further
// ahead the misses overlap the arithmetic better (the same harness, medians of alternating runs: forward 4.5 → 3.5
// ms, backward 6.9 → 6.0 ms; with its operands in cache the gate takes 2.0 and 2.9 ms): fetches into L1 from that far
// held the core's few L1 miss slots. bench/engine.ts shows the gate's time per step.
// Always inlined: a helper that does nothing but prefetch looks free of side effects to GCC, which may then delete
// its calls as dead code (as it did to the GEMM's C-tile fetch, gemm_blocked.h).
constexpr int64_t kAhead = 4096;
__attribute__((always_inline)) inline void fetch_ahead(const float* p, int64_t i) {
#if defined(DN_SIMD)
  if (i % 16 == 0) _mm_prefetch(reinterpret_cast<const char*>(p + i + kAhead), _MM_HINT_T1);
#else
  (void)p;
  (void)i;
#endif
}

// Row kernels with restrict pointers: the vectorizer then needs no alias checks. Whole registers go through Isa::exp
// (about a third of the instructions of the clamped scalar form once vectorized); the tail through dn_fast_exp.
void swiglu_row(int64_t f, const float* __restrict a, const float* __restrict u, float* __restrict m) {
  int64_t i = 0;
#if defined(DN_SIMD)
  using dn_simd::Isa;
  const Isa::F one = Isa::set1(1.0f), neg = Isa::set1(-1.0f);
  for (; i + Isa::W <= f; i += Isa::W) {
    fetch_ahead(a, i);
    fetch_ahead(u, i);
    const Isa::F x = Isa::load(a + i);
    const Isa::F den = Isa::add(one, Isa::exp(Isa::mul(x, neg)));
    Isa::store(m + i, Isa::mul(Isa::div(x, den), Isa::load(u + i)));
  }
#endif
#pragma omp simd
  for (int64_t j = i; j < f; ++j) m[j] = a[j] / (1.0f + dn_fast_exp(-a[j])) * u[j];
}

void swiglu_row_back(int64_t f, const float* __restrict g, const float* __restrict a, const float* __restrict u,
                     float* __restrict da, float* __restrict du) {
  int64_t i = 0;
#if defined(DN_SIMD)
  using dn_simd::Isa;
  const Isa::F one = Isa::set1(1.0f), neg = Isa::set1(-1.0f);
  for (; i + Isa::W <= f; i += Isa::W) {
    fetch_ahead(a, i);
    fetch_ahead(u, i);
    fetch_ahead(g, i);
    const Isa::F x = Isa::load(a + i), gi = Isa::load(g + i);
    const Isa::F sg = Isa::div(one, Isa::add(one, Isa::exp(Isa::mul(x, neg))));
    Isa::store(du + i, Isa::mul(Isa::mul(gi, x), sg));
    // g·u·sg·(1 + x·(1 − sg))
    const Isa::F t = Isa::fma(x, Isa::sub(one, sg), one);
    Isa::store(da + i, Isa::mul(Isa::mul(Isa::mul(gi, Isa::load(u + i)), sg), t));
  }
#endif
#pragma omp simd
  for (int64_t j = i; j < f; ++j) {
    const float x = a[j], sg = 1.0f / (1.0f + dn_fast_exp(-x));
    du[j] = g[j] * x * sg;
    da[j] = g[j] * u[j] * sg * (1.0f + x * (1.0f - sg));
  }
}
}  // namespace

extern "C" dn_status dn_swiglu_forward(int64_t n, int64_t f, const float* au, float* m) {
#pragma omp parallel for schedule(static) if (n * f > 32768)
  for (int64_t r = 0; r < n; ++r) swiglu_row(f, au + r * 2 * f, au + r * 2 * f + f, m + r * f);
  return DN_OK;
}

extern "C" dn_status dn_swiglu_backward(int64_t n, int64_t f, const float* dm, const float* au, float* dau) {
#pragma omp parallel for schedule(static) if (n * f > 32768)
  for (int64_t r = 0; r < n; ++r) {
    swiglu_row_back(f, dm + r * f, au + r * 2 * f, au + r * 2 * f + f, dau + r * 2 * f, dau + r * 2 * f + f);
  }
  return DN_OK;
}
