// The body of dn_sgemm for one instruction-set level, included by gemm_avx512.cpp, gemm_avx2.cpp and gemm_scalar.cpp
// (each compiled with its level's flags: CMakeLists.txt) inside namespace DN_GEMM_NS, so the three copies never share
// a symbol. BLIS-style: B packed for a column block (NR-wide micro-panels, KC-deep), A in MC×KC blocks (MR-tall; at
// AVX-512 a transposed A with alpha = 1 read in place), an MR×NR register-blocked micro-kernel (AVX-512 14×32 with 8-
// and 4-row forms for a short last panel and packing by 16×16 register transposes, AVX2 6×16, portable 4×16; AVX-512
// and AVX2 also read small products in place), OpenMP over (row block, column chunk) tasks, the chunks of one row block
// sharing its packed A (or reading A in place). Each C element is summed by one thread in a fixed k order: the same
// bits for any thread count.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/dn_buffer.h"
#include "common/dn_simd.h"
#include "gemm/cpu/gemm_internal.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#ifndef DN_GEMM_NS
#error "gemm_blocked.h is included by gemm_<level>.cpp, which names DN_GEMM_NS"
#endif

namespace dn_gemm {
namespace DN_GEMM_NS {
namespace {

#if defined(__AVX512F__)
#ifndef DN_GEMM_MR
#define DN_GEMM_MR 14
#endif
constexpr int MR = DN_GEMM_MR, NR = 32;
#elif defined(__AVX2__) && defined(__FMA__)
#define DN_GEMM_AVX2 1
constexpr int MR = 6, NR = 16;
#else
constexpr int MR = 4, NR = 16;
#endif
// Block sizes (overridable at build time for tuning): an A block MC×KC stays in L2, a B micro-panel KC×NR in L1
// (32 KB for AVX-512); 14 rows use 28 of the 32 zmm registers for accumulators, 6×16 12 of the 16 ymm.
#ifndef DN_GEMM_KC
#define DN_GEMM_KC 256
#endif
#ifndef DN_GEMM_MC_PANELS
#define DN_GEMM_MC_PANELS 12
#endif
constexpr int64_t KC = DN_GEMM_KC;
constexpr int64_t MC = MR * DN_GEMM_MC_PANELS;

// Aligned scratch that grows and is kept per thread, so steady-state calls allocate nothing.
using Scratch = dn_common::AlignedFloats;

// What a micro-kernel adds its product to as it stores C's tile: C itself (accumulating: a later k block, or
// beta ≠ 0 after scale_c), another matrix (dn_sgemm_add's D, on the first k block), or nothing (p null: the first k
// block of a beta = 0 call stores the product, so C needs no clearing pass). Points at the tile's first element.
// `stream` (with p null): C is stored once and is far larger than the caches, so the kernel writes its whole tiles
// with non-temporal stores, which skip reading C's lines for ownership (see kStreamBytes).
struct CIn {
  const float* p;
  int64_t ld;
  bool stream = false;
};

#if defined(__AVX512F__) || defined(DN_GEMM_AVX2)
// An output this large (m·n floats, written once: one k block, beta 0) is stored around the caches: with plain stores,
// fetching its lines for ownership kept the kernel waiting (the LM head's 1024 × 8192 logits, one thread: 82% of
// OpenBLAS's rate with AVX-512 on an Intel Xeon, 26.7 ms streamed against 30.8; with AVX2 on Zen 4, whose 256-bit
// kernel runs as fast as the AVX-512 one, 86–88% of OpenBLAS's rate with plain stores).
constexpr int64_t kStreamBytes = (int64_t)8 << 20;
#endif

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
// Fetches row i of an mr×nr tile of C, and of `in` when it is another matrix, into L1 (none past row mr).
// Always inlined: a function that does nothing but prefetch looks free of side effects to GCC, which then deletes its
// calls as dead code (that happened to the earlier all-at-once form of this fetch: the binary had none of it).
__attribute__((always_inline)) inline void prefetch_row(const float* C, int64_t ldc, int64_t i, int64_t mr, int64_t nr,
                                                        CIn in) {
  if (i >= mr) return;
  _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + nr - 1), _MM_HINT_T0);
  if (in.p && in.p != C) {
    _mm_prefetch(reinterpret_cast<const char*>(in.p + i * in.ld), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(in.p + i * in.ld + nr - 1), _MM_HINT_T0);
  }
}

// The k steps between two rows' fetches of C's tile in a micro-kernel: the rows are fetched one at a time over the
// k loop's first R·kFetchStep steps, not all before it, where a tile's 28 lines (AVX-512) coming from L3 or memory
// would hold the core's outstanding-miss slots while the loop's first loads of A and B wait. Measured on Zen 4, one
// thread, AVX-512, the step's GEMM calls in a harness (medians of 8 alternating runs): 1.6–2.2% less time than with
// no fetch, 1.3% less than with the tile fetched at once (x·[W1;W3]ᵀ, 6 MiB of C written once: 98–102 → 105–106
// GFLOP/s). Shorter k loops fetch the tile at their start.
constexpr int64_t kFetchStep = 4;
#endif

// Element (r, c) of op(X).
inline float at(const Operand& X, int64_t r, int64_t c) { return X.trans ? X.p[c * X.ld + r] : X.p[r * X.ld + c]; }

#if defined(__AVX512F__)
static_assert(MR <= 16 && NR == 32, "the AVX-512 packing transposes 16×16 tiles");
// dst[c·ds + r] = scale · src[r·ls + c] for r < 16, c < cols ≤ 16, the lanes of store_mask stored per column; rows at
// and past `rows` read as 0. One 16×16 register transpose (4 rounds of 16 shuffles) in place of 256 strided stores.
inline void transpose16(const float* src, int64_t ls, int rows, int cols, float scale, float* dst, int64_t ds,
                        __mmask16 store_mask) {
  const __mmask16 lm = (__mmask16)(cols >= 16 ? 0xFFFFu : (1u << cols) - 1u);
  __m512 r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(lm, src + i * ls) : _mm512_setzero_ps();
  // Pairs of rows interleaved: t[2j] = a0 b0 a1 b1 | a4 b4 a5 b5 | …, t[2j+1] the same from a2 b2 a3 b3.
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) {
    t[2 * j] = _mm512_unpacklo_ps(r[2 * j], r[2 * j + 1]);
    t[2 * j + 1] = _mm512_unpackhi_ps(r[2 * j], r[2 * j + 1]);
  }
  // Groups of 4 rows g: r[4g + c] holds, in 128-bit lane L, column c + 4L of rows 4g .. 4g+3.
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
    const __m512d t0 = _mm512_castps_pd(t[4 * g]), t1 = _mm512_castps_pd(t[4 * g + 1]),
                  t2 = _mm512_castps_pd(t[4 * g + 2]), t3 = _mm512_castps_pd(t[4 * g + 3]);
    r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  // 128-bit lanes: t[c] = (g0, g1) × columns (c, c+8), t[4+c] = columns (c+4, c+12); t[8+c], t[12+c] for g2, g3.
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
  }
  // Whole columns: r[c] column c (g0 .. g3 in lanes 0 .. 3).
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
    r[c + 8] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
    r[c + 4] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88);
    r[c + 12] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xdd);
  }
  const __m512 s = _mm512_set1_ps(scale);
#pragma GCC unroll 16
  for (int c = 0; c < 16; ++c)
    if (c < cols) _mm512_mask_storeu_ps(dst + c * ds, store_mask, _mm512_mul_ps(s, r[c]));
}

// Ap[ir-panel][p][i] = alpha · A(i0 + i, p0 + p), zero-padded to MR rows.
void pack_a(const Operand& A, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float alpha, float* Ap) {
  const __mmask16 mr_lanes = (__mmask16)((1u << MR) - 1u);
  if (A.trans) {
    // Row p of the block is contiguous in A: read it once, across all panels (panel by panel would revisit each row's
    // lines once per panel, with a row stride that defeats the L1 and the TLB).
    // The rows 8 ahead are fetched meanwhile: the hardware prefetchers lose track at each jump of a row stride.
    const __m512 s = _mm512_set1_ps(alpha);
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = A.p + (p0 + p) * A.ld + i0;
      if (p + 8 < kc)
        for (int64_t i = 0; i < mc; i += 16) _mm_prefetch(reinterpret_cast<const char*>(src + 8 * A.ld + i), _MM_HINT_T0);
      for (int64_t ir = 0; ir < mc; ir += MR) {
        const __mmask16 lm = (__mmask16)((1u << std::min<int64_t>(MR, mc - ir)) - 1u);
        _mm512_mask_storeu_ps(Ap + ir * kc + p * MR, mr_lanes, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(lm, src + ir)));
      }
    }
    return;
  }
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int mr = (int)std::min<int64_t>(MR, mc - ir);
    const float* src = A.p + (i0 + ir) * A.ld + p0;
    for (int64_t p = 0; p < kc; p += 16)
      transpose16(src + p, A.ld, mr, (int)std::min<int64_t>(16, kc - p), alpha, Ap + ir * kc + p * MR, MR, mr_lanes);
  }
}

#else
#if defined(DN_GEMM_AVX2)
// The lanes [0, n) of an 8-lane mask (maskload/maskstore take the sign bit of each 32-bit lane).
inline __m256i lanes8(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// col[c][r] = scale · src[r·ls + c] for r < 8, c < 8; rows at and past `rows` and columns at and past `cols` read as
// 0. One 8×8 register transpose (Isa::transpose8) in place of 64 strided scalar stores: the AVX2 form of transpose16.
// Whole rows load unmasked (masked loads cost more); the callers store the columns.
inline void transpose8(const float* src, int64_t ls, int rows, int cols, float scale, __m256 (&col)[8]) {
  __m256 r[8];
  if (cols == 8) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) r[i] = i < rows ? _mm256_loadu_ps(src + i * ls) : _mm256_setzero_ps();
  } else {
    const __m256i lm = lanes8(cols);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) r[i] = i < rows ? _mm256_maskload_ps(src + i * ls, lm) : _mm256_setzero_ps();
  }
  dn_simd::Isa::transpose8(r, col);
  const __m256 s = _mm256_set1_ps(scale);
#pragma GCC unroll 8
  for (int c = 0; c < 8; ++c) col[c] = _mm256_mul_ps(s, col[c]);
}
#endif

// Ap[ir-panel][p][i] = alpha · A(i0 + i, p0 + p), zero-padded to MR rows.
void pack_a(const Operand& A, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float alpha, float* Ap) {
#if defined(DN_GEMM_AVX2)
  static_assert(MR <= 8, "the AVX2 packing transposes 8×8 tiles");
  if (!A.trans) {
    // The rows of an MR-row panel are contiguous along p: 8×8 register transposes. Column p of the block is MR
    // floats at Ap + ir·kc + p·MR, so the columns are stored whole (8 lanes) in increasing p, each store's 2 extra
    // lanes overwritten by the next column's; only the block's very last column is stored masked (past it lies
    // another block, perhaps another thread's).
    const __m256i mr_lanes = lanes8(MR);
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int mr = (int)std::min<int64_t>(MR, mc - ir);
      const float* src = A.p + (i0 + ir) * A.ld + p0;
      float* dst = Ap + ir * kc;
      const bool last_panel = ir + MR >= mc;
      for (int64_t p = 0; p < kc; p += 8) {
        const int cols = (int)std::min<int64_t>(8, kc - p);
        __m256 col[8];
        transpose8(src + p, A.ld, mr, cols, alpha, col);
        const int whole = last_panel && p + 8 >= kc ? cols - 1 : cols;
        for (int c = 0; c < whole; ++c) _mm256_storeu_ps(dst + (p + c) * MR, col[c]);
        if (whole < cols) _mm256_maskstore_ps(dst + (p + whole) * MR, mr_lanes, col[whole]);
      }
    }
    return;
  }
  {
    // Transposed A (the weight gradients' dYᵀ): an MR-row panel's column p is MR contiguous floats of A's row p0 + p.
    // Row p of the block is read once across all panels, and the row 8 ahead is fetched meanwhile, as in the
    // AVX-512 form: panel by panel, each panel would walk kc rows at A's row stride (a new line, and often a new page,
    // per load) with nothing for the hardware prefetchers to follow.
    // Columns are stored whole (8 lanes, the 2 past MR landing in the panel's next column, written after), except a
    // panel's last column, whose extra lanes would fall on the next panel's first column, already written.
    const __m256i st = lanes8(MR);
    const __m256 s = _mm256_set1_ps(alpha);
    const int64_t whole_panels = mc / MR;
    // Whole loads while 8 floats from the panel's start lie inside A's row (i0 + ir + 8 ≤ i0 + mc).
    const int64_t unmasked = mc >= 8 ? std::min<int64_t>(whole_panels, (mc - 8) / MR + 1) : 0;
    const __m256i tail_ld = lanes8((int)(mc - whole_panels * MR));
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = A.p + (p0 + p) * A.ld + i0;
      if (p + 8 < kc)
        for (int64_t i = 0; i < mc; i += 16) _mm_prefetch(reinterpret_cast<const char*>(src + 8 * A.ld + i), _MM_HINT_T0);
      float* dst = Ap + p * MR;
      const bool last = p + 1 == kc;
      int64_t q = 0;
      for (; q < unmasked; ++q) {
        const __m256 v = _mm256_mul_ps(s, _mm256_loadu_ps(src + q * MR));
        if (last) _mm256_maskstore_ps(dst + q * MR * kc, st, v);
        else _mm256_storeu_ps(dst + q * MR * kc, v);
      }
      for (; q < whole_panels; ++q)
        _mm256_maskstore_ps(dst + q * MR * kc, st, _mm256_mul_ps(s, _mm256_maskload_ps(src + q * MR, st)));
      if (whole_panels * MR < mc)
        _mm256_maskstore_ps(dst + q * MR * kc, st, _mm256_mul_ps(s, _mm256_maskload_ps(src + q * MR, tail_ld)));
    }
    return;
  }
#endif
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t mr = std::min<int64_t>(MR, mc - ir);
    float* dst = Ap + ir * kc;
    if (A.trans) {
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = A.p + (p0 + p) * A.ld + i0 + ir;
        float* d = dst + p * MR;
        int64_t i = 0;
        for (; i < mr; ++i) d[i] = alpha * src[i];
        for (; i < MR; ++i) d[i] = 0.0f;
      }
    } else {
      for (int64_t i = 0; i < mr; ++i) {
        const float* src = A.p + (i0 + ir + i) * A.ld + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = alpha * src[p];
      }
      for (int64_t i = mr; i < MR; ++i)
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = 0.0f;
    }
  }
}
#endif

// Bp for one NR-wide panel: Bp[p][j] = B(p0 + p, j0 + j), zero-padded to NR columns; transposed B by 16×16 register
// transposes with AVX-512, 8×8 with AVX2.
void pack_b_panel(const Operand& B, int64_t p0, int64_t kc, int64_t j0, int64_t nr, float* dst) {
  if (!B.trans) {
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = B.p + (p0 + p) * B.ld + j0;
      float* d = dst + p * NR;
      if (nr == NR) {
        std::memcpy(d, src, sizeof(float) * NR);
      } else {
        int64_t j = 0;
        for (; j < nr; ++j) d[j] = src[j];
        for (; j < NR; ++j) d[j] = 0.0f;
      }
    }
  } else {
#if defined(__AVX512F__)
    for (int h = 0; h < NR; h += 16) {
      const int rows = (int)std::max<int64_t>(0, std::min<int64_t>(16, nr - h));
      const float* src = B.p + (j0 + h) * B.ld + p0;
      for (int64_t p = 0; p < kc; p += 16)
        transpose16(src + p, B.ld, rows, (int)std::min<int64_t>(16, kc - p), 1.0f, dst + p * NR + h, NR, 0xFFFF);
    }
#elif defined(DN_GEMM_AVX2)
    for (int h = 0; h < NR; h += 8) {
      const int rows = (int)std::max<int64_t>(0, std::min<int64_t>(8, nr - h));
      const float* src = B.p + (j0 + h) * B.ld + p0;
      for (int64_t p = 0; p < kc; p += 8) {
        const int cols = (int)std::min<int64_t>(8, kc - p);
        __m256 col[8];
        transpose8(src + p, B.ld, rows, cols, 1.0f, col);
        for (int c = 0; c < cols; ++c) _mm256_storeu_ps(dst + (p + c) * NR + h, col[c]);
      }
    }
#else
    for (int64_t j = 0; j < nr; ++j) {
      const float* src = B.p + (j0 + j) * B.ld + p0;
      for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = src[p];
    }
    for (int64_t j = nr; j < NR; ++j)
      for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = 0.0f;
#endif
  }
}


// Panels [jp0, jp1) of one k block (panel jp at dst + jp·KC·NR, columns j0 + jp·NR of B, nc in all). An untransposed
// B is copied row by row across the panels: panel by panel, each would walk kc rows at B's row stride, one line per
// row, where row by row the reads run along B's rows for the hardware prefetchers to follow.
void pack_b_panels(const Operand& B, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int64_t jp0, int64_t jp1,
                   float* dst) {
  if (B.trans || (nc - jp0 * NR) < NR) {
    for (int64_t jp = jp0; jp < jp1; ++jp)
      pack_b_panel(B, p0, kc, j0 + jp * NR, std::min<int64_t>(NR, nc - jp * NR), dst + jp * KC * NR);
    return;
  }
  const int64_t whole = std::min<int64_t>(jp1, nc / NR);
  for (int64_t p = 0; p < kc; ++p) {
    const float* src = B.p + (p0 + p) * B.ld + j0;
    for (int64_t jp = jp0; jp < whole; ++jp) std::memcpy(dst + jp * KC * NR + p * NR, src + jp * NR, sizeof(float) * NR);
  }
  for (int64_t jp = whole; jp < jp1; ++jp)
    pack_b_panel(B, p0, kc, j0 + jp * NR, std::min<int64_t>(NR, nc - jp * NR), dst + jp * KC * NR);
}

#if defined(__AVX512F__)
// c += a(i, p) · Bp[p·ldbp .. +NR) over p < kc and the first R rows, a(i, p) read through `a_at` (packed A, or A in
// place).
template <int R = MR, typename AAt>
inline void accumulate(int64_t kc, AAt a_at, const float* Bp, int64_t ldbp, __m512* c0, __m512* c1) {
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(Bp + p * ldbp), b1 = _mm512_loadu_ps(Bp + p * ldbp + 16);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(a_at(i, p));
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
  }
}

// C[mr×nr] = in + scale · c (masked at the edges; scale = 1 adds exactly).
inline void add_tile(const __m512* c0, const __m512* c1, float scale, float* C, int64_t ldc, int64_t mr, int64_t nr,
                     CIn in) {
  const int64_t n0 = std::min<int64_t>(nr, 16), n1 = std::max<int64_t>(nr - 16, 0);
  const __mmask16 m0 = (__mmask16)((1u << n0) - 1u), m1 = (__mmask16)((1u << n1) - 1u);
  const __m512 s = _mm512_set1_ps(scale);
  for (int i = 0; i < mr; ++i) {
    float* ci = C + i * ldc;
    if (!in.p) {
      _mm512_mask_storeu_ps(ci, m0, _mm512_mul_ps(s, c0[i]));
      if (n1) _mm512_mask_storeu_ps(ci + 16, m1, _mm512_mul_ps(s, c1[i]));
      continue;
    }
    const float* ii = in.p + i * in.ld;
    _mm512_mask_storeu_ps(ci, m0, _mm512_fmadd_ps(s, c0[i], _mm512_maskz_loadu_ps(m0, ii)));
    if (n1) _mm512_mask_storeu_ps(ci + 16, m1, _mm512_fmadd_ps(s, c1[i], _mm512_maskz_loadu_ps(m1, ii + 16)));
  }
}

// C[mr×nr] = in + A(R rows × kc) · Bp(kc×NR); mr ≤ R, nr ≤ NR. A's element (i, p) is Ap[p·sa + i]: packed (sa = MR,
// kPacked, a compile-time stride) or a transposed A read in place (sa its row stride). The tiles of C and of `in` are
// fetched into L1 during the k loop (kFetchStep), for a plain store too: the loop hides the misses its final
// read-modify-write, or its stores' fetches for ownership, would otherwise wait on. A streamed tile is not read at all.
template <int R, bool kPacked>
inline void micro_kernel_rows(int64_t kc, const float* __restrict Ap, int64_t lda, const float* __restrict Bp,
                              float* C, int64_t ldc, int64_t mr, int64_t nr, CIn in) {
  const int64_t sa = kPacked ? (int64_t)MR : lda;
  const bool whole = mr == R && nr == NR;
  const bool fetch = !(in.stream && whole);
  __m512 c0[R], c1[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  // The same k order as one loop (the steps split, not reordered): the same bits. A and B advance as pointers, so
  // that the main loop indexes them as it would from the start.
  const float* a = Ap;
  const float* b = Bp;
  int64_t left = kc;
  if (fetch && kc >= R * kFetchStep) {
    for (int i = 0; i < R; ++i) {
      prefetch_row(C, ldc, i, mr, nr, in);
      accumulate<R>(kFetchStep, [a, sa](int r, int64_t p) { return a[p * sa + r]; }, b, NR, c0, c1);
      a += kFetchStep * sa;
      b += kFetchStep * NR;
    }
    left -= R * kFetchStep;
  } else if (fetch) {
    for (int i = 0; i < mr; ++i) prefetch_row(C, ldc, i, mr, nr, in);
  }
  accumulate<R>(left, [a, sa](int r, int64_t p) { return a[p * sa + r]; }, b, NR, c0, c1);
  if (whole) {
    if (in.stream) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        _mm512_stream_ps(C + i * ldc, c0[i]);
        _mm512_stream_ps(C + i * ldc + 16, c1[i]);
      }
      return;
    }
    if (!in.p) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        _mm512_storeu_ps(C + i * ldc, c0[i]);
        _mm512_storeu_ps(C + i * ldc + 16, c1[i]);
      }
      return;
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      float* ci = C + i * ldc;
      const float* ii = in.p + i * in.ld;
      _mm512_storeu_ps(ci, _mm512_add_ps(_mm512_loadu_ps(ii), c0[i]));
      _mm512_storeu_ps(ci + 16, _mm512_add_ps(_mm512_loadu_ps(ii + 16), c1[i]));
    }
    return;
  }
  // The edge (a short row panel or column block) through a copy: handing add_tile the accumulators' own address made
  // GCC keep all 2R of them in a stack array as well, zeroed before and stored after every k loop (AVX-512, Zen 4:
  // 6% of the GEMM's samples on those stores).
  __m512 e0[MR], e1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    e0[i] = c0[i];
    e1[i] = c1[i];
  }
  add_tile(e0, e1, 1.0f, C, ldc, mr, nr, in);
}

// C[mr×nr] = in + Ap(MR×kc) · Bp(kc×NR); mr ≤ MR, nr ≤ NR. A short last row panel (the m = 128 or 256 of the engine's
// weight gradients leave 2 or 4 rows) runs a kernel of that height instead of MR rows of mostly padding.
inline void micro_kernel(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C, int64_t ldc,
                         int64_t mr, int64_t nr, CIn in) {
  if (mr > 8) micro_kernel_rows<MR, true>(kc, Ap, MR, Bp, C, ldc, mr, nr, in);
  else if (mr > 4) micro_kernel_rows<8, true>(kc, Ap, MR, Bp, C, ldc, mr, nr, in);
  else micro_kernel_rows<4, true>(kc, Ap, MR, Bp, C, ldc, mr, nr, in);
}

// C[MR×nr] = in + op(A)(MR×kc) · Bp(kc×NR) with op(A) = Aᵀ read in place (sa: A's row stride), MR whole rows: the
// weight gradients' dYᵀ and the LM head's dZᵀ, whose MR elements of a k step are already contiguous, at a row stride
// the hardware prefetchers follow. Packing them cost a pass over A: on Zen 4, one thread, the step's weight-gradient
// calls with A cold took 3.5 ms less per step in a harness (2 × 2 alternating runs; 3% to 5% more GFLOP/s each). Not
// at AVX2: there a k step of the 6×16 kernel is 6 cycles, too few to hide a strided line per step (in the same
// harness, 97 → 63 GFLOP/s at A's 32 KiB row stride of the LM head, 103 → 88–96 at 6 KiB).
#define DN_GEMM_HAVE_A_IN_PLACE 1
inline void micro_kernel_at(int64_t kc, const float* __restrict A, int64_t sa, const float* __restrict Bp, float* C,
                            int64_t ldc, int64_t nr, CIn in) {
  micro_kernel_rows<MR, false>(kc, A, sa, Bp, C, ldc, MR, nr, in);
}

// Small products: A is read in place, element (i, p) at A[i·rs + p·cs] (rows past mr repeat row 0 and
// are not stored), and B is either packed or, when not transposed, read in place as NR-wide row slices.
// Packing would cost as much as the arithmetic at these sizes (the attention's per-head products).
inline void micro_kernel_direct(int64_t kc, float alpha, const float* A, int64_t rs, int64_t cs, const float* Bp,
                                int64_t ldbp, float* C, int64_t ldc, int64_t mr, int64_t nr) {
  __m512 c0[MR], c1[MR];
  const float* arow[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    c0[i] = c1[i] = _mm512_setzero_ps();
    arow[i] = A + (i < mr ? i : 0) * rs;
  }
  accumulate(kc, [&arow, cs](int i, int64_t p) { return arow[i][p * cs]; }, Bp, ldbp, c0, c1);
  add_tile(c0, c1, alpha, C, ldc, mr, nr, CIn{C, ldc});
}
#define DN_GEMM_HAVE_DIRECT 1
#elif defined(DN_GEMM_AVX2)
// C[mr×nr] += scale · Σ_p a(i, p) · B[p·ldbp .. +NR), a(i, p) read through `a_at` (packed A, or A in place); scale = 1
// adds exactly (fma(1, t, c) = t + c). Written with
// named accumulators and used only by the out-of-line kernels below: inlined into the OpenMP region with an array of
// them, GCC spilled a B vector to the stack on every k step (12 accumulators + 2 B + 1 broadcast use 15 of the 16
// ymm), costing a quarter of the FMA rate.
// The tile is stored as C = in + scale · Σ (CIn above).
template <typename AAt>
inline void tile_product(int64_t kc, AAt a_at, const float* Bp, int64_t ldbp, float scale, float* C, int64_t ldc,
                         int64_t mr, int64_t nr, CIn in) {
  // The tiles of C and `in` are fetched into L1 during the k loop, a row every kFetchStep steps as the AVX-512 kernel
  // does, for a plain store too: the loop hides the misses. A streamed tile is not read at all.
  const bool whole = mr == MR && nr == NR;
  const bool fetch = !(in.stream && whole);
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define DN_GEMM_ROW(i)                                 \
  do {                                                 \
    const __m256 a = _mm256_set1_ps(a_at(i, p));       \
    c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0);         \
    c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1);         \
  } while (0)
#define DN_GEMM_STEP()                                                                                        \
  do {                                                                                                        \
    const __m256 b0 = _mm256_loadu_ps(Bp + p * ldbp), b1 = _mm256_loadu_ps(Bp + p * ldbp + 8);                \
    DN_GEMM_ROW(0);                                                                                           \
    DN_GEMM_ROW(1);                                                                                           \
    DN_GEMM_ROW(2);                                                                                           \
    DN_GEMM_ROW(3);                                                                                           \
    DN_GEMM_ROW(4);                                                                                           \
    DN_GEMM_ROW(5);                                                                                           \
  } while (0)
  int64_t p = 0;
  if (fetch && kc >= MR * kFetchStep) {
#pragma GCC unroll 1
    for (int i = 0; i < MR; ++i) {
      prefetch_row(C, ldc, i, mr, nr, in);
      for (const int64_t end = p + kFetchStep; p < end; ++p) DN_GEMM_STEP();
    }
  } else if (fetch) {
    for (int i = 0; i < mr; ++i) prefetch_row(C, ldc, i, mr, nr, in);
  }
#pragma GCC unroll 4
  for (; p < kc; ++p) DN_GEMM_STEP();
#undef DN_GEMM_STEP
#undef DN_GEMM_ROW
  const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  const __m256 s = _mm256_set1_ps(scale);
  if (whole) {
    if (in.stream) {
      for (int i = 0; i < MR; ++i) {
        _mm256_stream_ps(C + i * ldc, _mm256_mul_ps(s, acc[i][0]));
        _mm256_stream_ps(C + i * ldc + 8, _mm256_mul_ps(s, acc[i][1]));
      }
      return;
    }
    if (!in.p) {
      for (int i = 0; i < MR; ++i) {
        _mm256_storeu_ps(C + i * ldc, _mm256_mul_ps(s, acc[i][0]));
        _mm256_storeu_ps(C + i * ldc + 8, _mm256_mul_ps(s, acc[i][1]));
      }
      return;
    }
    for (int i = 0; i < MR; ++i) {
      float* ci = C + i * ldc;
      const float* ii = in.p + i * in.ld;
      _mm256_storeu_ps(ci, _mm256_fmadd_ps(s, acc[i][0], _mm256_loadu_ps(ii)));
      _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(s, acc[i][1], _mm256_loadu_ps(ii + 8)));
    }
    return;
  }
  alignas(32) float tile[MR * NR];
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(tile + i * NR, acc[i][0]);
    _mm256_store_ps(tile + i * NR + 8, acc[i][1]);
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j)
      C[i * ldc + j] = in.p ? std::fma(scale, tile[i * NR + j], in.p[i * in.ld + j]) : scale * tile[i * NR + j];
}

// C[mr×nr] = in + Ap(MR×kc) · Bp(kc×NR); mr ≤ MR, nr ≤ NR.
__attribute__((noinline)) void micro_kernel(int64_t kc, const float* __restrict Ap, const float* __restrict Bp,
                                            float* C, int64_t ldc, int64_t mr, int64_t nr, CIn in) {
  tile_product(kc, [Ap](int i, int64_t p) { return Ap[p * MR + i]; }, Bp, NR, 1.0f, C, ldc, mr, nr, in);
}

// Small products, A and (untransposed) B read in place as in the AVX-512 micro_kernel_direct.
__attribute__((noinline)) void micro_kernel_direct(int64_t kc, float alpha, const float* A, int64_t rs, int64_t cs,
                                                   const float* Bp, int64_t ldbp, float* C, int64_t ldc, int64_t mr,
                                                   int64_t nr) {
  const float* arow[MR];
  for (int i = 0; i < MR; ++i) arow[i] = A + (i < mr ? i : 0) * rs;
  tile_product(kc, [&arow, cs](int i, int64_t p) { return arow[i][p * cs]; }, Bp, ldbp, alpha, C, ldc, mr, nr,
               CIn{C, ldc});
}
#define DN_GEMM_HAVE_DIRECT 1
#else
// Portable: fixed-size loops the compiler can keep in registers and vectorize for the target.
inline void micro_kernel(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C, int64_t ldc,
                         int64_t mr, int64_t nr, CIn in) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i) {
      const float a = Ap[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += a * Bp[j];
    }
    Ap += MR;
    Bp += NR;
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) C[i * ldc + j] = in.p ? in.p[i * in.ld + j] + acc[i][j] : acc[i][j];
}
#endif

void scale_c(int64_t m, int64_t n, float beta, float* c, int64_t ldc, bool parallel) {
  if (beta == 1.0f) return;
#pragma omp parallel for schedule(static) if (parallel && m * n > 32768)
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    // beta = 0 overwrites (NaN in C must not survive), as BLAS does.
    if (beta == 0.0f) std::memset(ci, 0, sizeof(float) * n);
    else for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
  }
}

// Products of at most this many multiply-adds take small_gemm.
constexpr int64_t kSmallProduct = 24 * 24 * 24;

// Small products: packing and threads cost more than they save. Same k order as the blocked path
// per element is not needed here: small calls always take this path, so results stay deterministic.
void small_gemm(const Operand& A, const Operand& B, int64_t m, int64_t n, int64_t k, float alpha, float* c,
                int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    for (int64_t p = 0; p < k; ++p) {
      const float aip = alpha * at(A, i, p);
      if (!B.trans) {
        const float* bp = B.p + p * B.ld;
        for (int64_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
      } else {
        for (int64_t j = 0; j < n; ++j) ci[j] += aip * B.p[j * B.ld + p];
      }
    }
  }
}

// The source lines of the A block a thread packs next, fetched into L2 a few at a time over the micro-kernel calls of
// the block before, which leave the memory system idle: packing otherwise waits on each line at L3's latency (a block
// spans up to 256 source rows of at most 1 KiB, a row stride apart, which the hardware prefetchers do not run ahead
// of). Measured with `bench/gemm.ts --cold-a`, where A comes from L3 as the step's activations do. Prefetches do not
// fault, so rounding a row up to whole lines may touch past A.
struct NextABlock {
  const float* base = nullptr;
  int64_t ld = 0, rows = 0, lines = 0, per_call = 0, r = 0, l = 0;
  // The block of rows [i0, i0 + mc) × k [p0, p0 + kc), fetched over `calls` calls of step().
  void init(const Operand& A, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int64_t calls) {
    const int64_t len = A.trans ? mc : kc;  // floats per source row
    base = A.trans ? A.p + p0 * A.ld + i0 : A.p + i0 * A.ld + p0;
    rows = A.trans ? kc : mc;
    lines = (len + 15) / 16 + 1;  // + 1: a row need not start on a line
    ld = A.ld;
    per_call = (rows * lines + calls - 1) / std::max<int64_t>(calls, 1);
  }
  void step() {
    for (int64_t i = 0; i < per_call && r < rows; ++i) {
      __builtin_prefetch(base + r * ld + l * 16, 0, 2);  // locality 2: L2 and out (prefetcht1 on x86)
      if (++l == lines) {
        l = 0;
        ++r;
      }
    }
  }
};

#if defined(DN_GEMM_AVX2)
// The next B micro-panel (kc rows of one 64-byte line at NR = 16), fetched into L2 a few lines at a time over the
// micro-kernel calls of the panel before, when the packed B is too large to stay in L2 (kFarB): every row block then
// reads the whole of it again, and the first row panel of each B panel waits on L3 for one line per k step, which
// the 6×16 kernel's 6-cycle k step does not hide. The LM head's two products that pack its 8 MiB E (logits x·Eᵀ,
// gradient dZ·E): on Zen 4 at AVX2, one thread, in a harness (alternating runs on a noisy host), 88–94% of OpenBLAS's
// rate without, 96–101% with. At AVX-512 (a 32-float panel row, a k step of 28 cycles) it made no difference. In the
// whole LM head (lmHeadLoss at N = 1024, V = 8192, alternating runs) the gain was within the host's noise: 138.4 ms
// against 139.5, averaged over 8 pairs.
constexpr int64_t kFarB = (int64_t)4 << 20;
struct NextBPanel {
  const float* p = nullptr;
  int64_t lines = 0, per_call = 0, l = 0;
  void init(const float* panel, int64_t kc, int64_t calls) {
    p = panel;
    lines = panel ? kc * NR / 16 : 0;
    per_call = (lines + calls - 1) / std::max<int64_t>(calls, 1);
    l = 0;
  }
  void step() {
    for (int64_t i = 0; i < per_call && l < lines; ++i, ++l) __builtin_prefetch(p + l * 16, 0, 2);
  }
};
#endif

}  // namespace

void sgemm(bool parallel, const Operand& A, const Operand& B, int64_t m, int64_t n, int64_t k, float alpha, float beta,
           float* c, int64_t ldc, const float* d, int64_t ldd) {
  // The paths, in the order taken: no product, the small one, the direct one, the blocked one. The blocked path
  // stores the first k block when beta = 0 instead of clearing C first (one pass over C fewer); every other path
  // scales C here.
  const bool none = k == 0 || alpha == 0.0f, small = m * n * k <= kSmallProduct;
#if defined(DN_GEMM_HAVE_DIRECT)
  const bool direct = !parallel && k <= KC && m * n * k <= (int64_t)1 << 21 && (B.trans || n % NR == 0);
#else
  const bool direct = false;
#endif
  const bool store_first = beta == 0.0f && !none && !small && !direct;
#if defined(__AVX512F__) || defined(DN_GEMM_AVX2)
  // Streamed: stored once (one k block, no addend), larger than kStreamBytes, with every row starting on the same
  // 64-byte offset (tiles start at multiples of NR = 32 or 16 columns, so C's start and row stride decide).
  const bool streamable = parallel && store_first && !d && k <= KC &&
                          m * n * (int64_t)sizeof(float) > kStreamBytes && ldc % 16 == 0 &&
                          reinterpret_cast<uintptr_t>(c) % sizeof(float) == 0;
  const int64_t lead = streamable ? (int64_t)((64 - reinterpret_cast<uintptr_t>(c) % 64) % 64 / sizeof(float)) : 0;
  if (streamable && lead > 0 && lead < n && m * lead * k > kSmallProduct) {
    // C starts off the 64-byte grid: its first `lead` columns as a product of their own (plain stores, the same
    // blocked path and so the same bits), the rest from the first aligned column.
    sgemm(parallel, A, B, m, lead, k, alpha, beta, c, ldc, nullptr, 0);
    const Operand rest{B.trans ? B.p + lead * B.ld : B.p + lead, B.ld, B.trans};
    sgemm(parallel, A, rest, m, n - lead, k, alpha, beta, c + lead, ldc, nullptr, 0);
    return;
  }
  const bool stream_c = streamable && lead == 0;
#else
  const bool stream_c = false;
#endif
  if (d && !store_first) {
    // An addend D on a path that does not store a first k block: C = D, then accumulate (beta 1).
    for (int64_t i = 0; i < m; ++i) std::memcpy(c + i * ldc, d + i * ldd, sizeof(float) * n);
    beta = 1.0f;
  }
  if (!store_first) scale_c(m, n, beta, c, ldc, parallel);
  if (none) return;
  if (small) {
    small_gemm(A, B, m, n, k, alpha, c, ldc);
    return;
  }
#if defined(DN_GEMM_HAVE_DIRECT)
  if (direct) {
    const int64_t rs = A.trans ? 1 : A.ld, cs = A.trans ? A.ld : 1;
    static thread_local Scratch d_scratch;
    float* bp = B.trans ? d_scratch.get((size_t)k * NR) : nullptr;
    for (int64_t j = 0; j < n; j += NR) {
      const int64_t nr = std::min<int64_t>(NR, n - j);
      if (B.trans) pack_b_panel(B, 0, k, j, nr, bp);
      const float* panel = B.trans ? bp : B.p + j;
      const int64_t ldbp = B.trans ? NR : B.ld;
      for (int64_t i = 0; i < m; i += MR) {
        micro_kernel_direct(k, alpha, A.p + i * rs, rs, cs, panel, ldbp, c + i * ldc + j, ldc,
                            std::min<int64_t>(MR, m - i), nr);
      }
    }
    return;
  }
#endif

  // B is packed for the whole k range of a column block (bounded to ~8 MB), so one parallel region
  // with two work-shared loops does the call: few barriers, which matters when cores are shared.
  static thread_local Scratch b_scratch, a_all_scratch;
  const int64_t nc_cap = std::max<int64_t>(NR * 8, ((int64_t)(2u << 20) / std::max<int64_t>(k, 1)) / NR * NR);
  const int64_t nc_blk = std::min<int64_t>(nc_cap, (n + NR - 1) / NR * NR);
  const int threads = parallel ? omp_get_max_threads() : 1;
  // Row blocks of whole MR-row panels, as even as they can be (block b: panels [b·P/n_ic, (b+1)·P/n_ic), at most
  // MC_PANELS each), and with more blocks than threads a multiple of the thread count, so that no thread is left with
  // a block more than another: the fixed MC with a remainder block gave one thread 60 panels and the other 50 at
  // m = 1536 (the FFN weight gradient) with AVX-512 and 2 threads.
  const int64_t m_panels = (m + MR - 1) / MR;
  int64_t n_ic = (m_panels + DN_GEMM_MC_PANELS - 1) / DN_GEMM_MC_PANELS;
  if (threads > 1 && n_ic > threads) n_ic = std::min<int64_t>(m_panels, (n_ic + threads - 1) / threads * threads);
  const auto block_row = [m, m_panels, n_ic](int64_t b) { return std::min<int64_t>(m, b * m_panels / n_ic * MR); };
  const int64_t n_pc = (k + KC - 1) / KC;
  // Every k block takes a full KC×NR slot per panel (the last one partly unused).
  float* Bp = b_scratch.get((size_t)(n_pc * KC) * nc_blk);

  for (int64_t jc = 0; jc < n; jc += nc_blk) {
    const int64_t nc = std::min<int64_t>(nc_blk, n - jc);
    const int64_t npanels = (nc + NR - 1) / NR;
    // Split the columns too when there are too few row blocks to keep every thread busy: below 3 tasks per thread
    // (measured with 2 threads: 7 row blocks run faster whole, 4 against 3, than as 14 half-width tasks; 5 do not).
    int64_t n_jchunks = 1;
    while (threads > 1 && n_ic * n_jchunks < 3 * threads && n_jchunks * 2 <= npanels) n_jchunks *= 2;
    const int64_t panels_per_chunk = (npanels + n_jchunks - 1) / n_jchunks;
    // A transposed is read in place where the level has micro_kernel_at (alpha = 1: packing would scale it), its
    // whole MR-row panels; a short last panel is packed.
#if defined(DN_GEMM_HAVE_A_IN_PLACE)
    const bool a_in_place = A.trans && alpha == 1.0f;
#else
    const bool a_in_place = false;
#endif
    // Split columns share their row block's packed A: packed once for all of them (bounded like B), not per chunk.
    const bool shared_a = !a_in_place && n_jchunks > 1 && n_ic * n_pc * MC * KC <= ((int64_t)2 << 20);
    float* Ap_all = shared_a ? a_all_scratch.get((size_t)(n_ic * n_pc * MC * KC)) : nullptr;
#if defined(DN_GEMM_AVX2)
    const bool far_b = n_pc * npanels * KC * NR * (int64_t)sizeof(float) > kFarB;
#endif
#pragma omp parallel num_threads(threads) if (parallel && m * n * k > 65536)
    {
      // Packed B: block pc (KC rows) holds npanels panels of KC×NR, panel jp at (pc·npanels + jp)·KC·NR.
      // In groups of up to 8 panels of one k block, at least two groups per thread.
      int64_t group = 8;
      while (group > 1 && n_pc * ((npanels + group - 1) / group) < 2 * threads) group /= 2;
      const int64_t n_groups = (npanels + group - 1) / group;
#pragma omp for schedule(dynamic, 1) nowait
      for (int64_t idx = 0; idx < n_pc * n_groups; ++idx) {
        const int64_t ipc = idx / n_groups, jp0 = (idx % n_groups) * group;
        const int64_t pc = ipc * KC, kc = std::min<int64_t>(KC, k - pc);
        pack_b_panels(B, pc, kc, jc, nc, jp0, std::min<int64_t>(npanels, jp0 + group), Bp + ipc * npanels * KC * NR);
      }
      // Shared packed A: row block b, k block pc at (b·n_pc + pc_index)·MC·KC.
      if (shared_a) {
#pragma omp for schedule(dynamic, 1)
        for (int64_t idx = 0; idx < n_ic * n_pc; ++idx) {
          const int64_t ic = block_row(idx / n_pc), pc = (idx % n_pc) * KC;
          pack_a(A, ic, block_row(idx / n_pc + 1) - ic, pc, std::min<int64_t>(KC, k - pc), alpha, Ap_all + idx * MC * KC);
        }
      } else {
#pragma omp barrier
      }
      static thread_local Scratch a_scratch;
      float* Ap = shared_a ? nullptr : a_scratch.get((size_t)MC * KC);
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < n_ic * n_jchunks; ++task) {
        const int64_t block = task / n_jchunks, chunk = task % n_jchunks;
        const int64_t ic = block_row(block), mc = block_row(block + 1) - ic;
        const int64_t jp0 = chunk * panels_per_chunk, jp1 = std::min<int64_t>(npanels, jp0 + panels_per_chunk);
        if (jp0 >= jp1) continue;
        for (int64_t ipc = 0; ipc < n_pc; ++ipc) {
          const int64_t pc = ipc * KC, kc = std::min<int64_t>(KC, k - pc);
          const int64_t whole_rows = a_in_place ? mc / MR * MR : 0;
          if (shared_a) Ap = Ap_all + (block * n_pc + ipc) * MC * KC;
          else if (whole_rows < mc) pack_a(A, ic + whole_rows, mc - whole_rows, pc, kc, alpha, Ap + whole_rows * kc);
          // The next A block this thread packs or reads in place: the next k block of these rows, or with one thread
          // (tasks then run in order) the next row block's first.
          NextABlock next;
          if (!shared_a) {
            const int64_t calls = (jp1 - jp0) * ((mc + MR - 1) / MR);
            if (ipc + 1 < n_pc) {
              next.init(A, ic, mc, pc + KC, std::min<int64_t>(KC, k - pc - KC), calls);
            } else if (threads == 1 && block + 1 < n_ic) {
              const int64_t ic2 = block_row(block + 1);
              next.init(A, ic2, block_row(block + 2) - ic2, 0, std::min<int64_t>(KC, k), calls);
            }
          }
          for (int64_t jp = jp0; jp < jp1; ++jp) {
            const int64_t j = jp * NR, nr = std::min<int64_t>(NR, nc - j);
            const float* bpanel = Bp + (ipc * npanels + jp) * KC * NR;
#if defined(DN_GEMM_AVX2)
            // The panel after this one: the chunk's next, or the next k block's first.
            NextBPanel next_b;
            const int64_t panel_calls = (mc + MR - 1) / MR;
            if (far_b && jp + 1 < jp1) next_b.init(bpanel + KC * NR, kc, panel_calls);
            else if (far_b && ipc + 1 < n_pc)
              next_b.init(Bp + ((ipc + 1) * npanels + jp0) * KC * NR, std::min<int64_t>(KC, k - pc - KC), panel_calls);
#endif
            for (int64_t ir = 0; ir < mc; ir += MR) {
              next.step();
#if defined(DN_GEMM_AVX2)
              next_b.step();
#endif
              float* ct = c + (ic + ir) * ldc + jc + j;
              const CIn in = !(store_first && ipc == 0) ? CIn{ct, ldc}
                             : d                        ? CIn{d + (ic + ir) * ldd + jc + j, ldd}
                                                        : CIn{nullptr, 0, stream_c};
#if defined(DN_GEMM_HAVE_A_IN_PLACE)
              if (ir < whole_rows) {
                micro_kernel_at(kc, A.p + pc * A.ld + ic + ir, A.ld, bpanel, ct, ldc, nr, in);
                continue;
              }
#endif
              micro_kernel(kc, Ap + ir * kc, bpanel, ct, ldc, std::min<int64_t>(MR, mc - ir), nr, in);
            }
          }
        }
      }
#if defined(__AVX512F__) || defined(DN_GEMM_AVX2)
      // Non-temporal stores are weakly ordered: drained before the region's closing barrier hands C on.
      if (stream_c) _mm_sfence();
#endif
    }
  }
}

}  // namespace DN_GEMM_NS
}  // namespace dn_gemm
