// Register-tiled causal attention with grouped KV heads for hd = NV·W (W floats per SIMD register, NV ≤ 4): the
// per-head products of dn_attention_forward/backward as two register tiles instead of packed-GEMM calls, which at
// hd = 32 spend as long packing as multiplying. Keys in lanes (S = q·kᵀ, dP = dO·vᵀ, against a zero-padded
// transposed K or V) and head dim in lanes (O = P·v, dq = dS·k, dk = dSᵀ·q, dv = Pᵀ·dO). Causal: no work above the
// diagonal, and probs/dscores are written and read on and below it only. One task per (sequence, KV head) owns every
// output it writes, so the bits do not depend on the thread count.
// No FP-exception semantics are needed here; without this GCC will not if-convert (and so not vectorize) the clamps
// inside dn_fast_exp.
#pragma GCC optimize("no-trapping-math")
#include "engine/cpu/attention_tiled.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "common/dn_simd.h"

#if defined(DN_SIMD)
namespace {
using dn_simd::Isa;
using F = Isa::F;
constexpr int W = Isa::W;
// Keys-in-lanes tile: kRA rows × kNU registers of keys (12 accumulators: fits AVX2's 16 registers too).
constexpr int kRA = 6, kNU = 2;
constexpr int64_t kKeyChunk = kNU * W;
constexpr int64_t kLineFloats = 16;
// Score blocks of one KV group up to this many floats (512 KiB) stay in a per-thread scratch.
constexpr int64_t kLocalScores = 128 * 1024;
// Head-dim-in-lanes tile: rows per tile for NV registers per row (≤ 12 accumulators).
constexpr int rows_for(int nv) { return nv == 1 ? 8 : nv == 2 ? 6 : nv == 3 ? 4 : 3; }

// C[r][0, kKeyChunk) = alpha · Σ_c A[c·lda + r] · Bt[c·ldt + ·] for R rows, A given transposed (a column per row):
// every broadcast is then at a fixed offset from one pointer.
template <int R>
inline void tile_keys(int64_t hd, const float* A, int64_t lda, const float* Bt, int64_t ldt, float alpha, float* C,
                      int64_t ldc) {
  static_assert(kNU == 2, "two key registers");
  F acc0[R], acc1[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = Isa::set1(0.0f);
  for (int64_t c = 0; c < hd; ++c) {
    F b0 = Isa::load(Bt + c * ldt), b1 = Isa::load(Bt + c * ldt + W);
    // Kept in registers: GCC would otherwise fold the two loads into every row's FMAs, 2·R loads per step where 2
    // do, and at AVX-512 on Zen 4 the loads, not the FMAs, then set the pace.
    __asm__("" : "+v"(b0), "+v"(b1));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const F a = Isa::set1(A[c * lda + r]);
      acc0[r] = Isa::fma(a, b0, acc0[r]);
      acc1[r] = Isa::fma(a, b1, acc1[r]);
    }
  }
  const F al = Isa::set1(alpha);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    Isa::store(C + r * ldc, Isa::mul(acc0[r], al));
    Isa::store(C + r * ldc + W, Isa::mul(acc1[r], al));
  }
}

// Rows [t0, t0 + R) of alpha · A·Btᵀ for keys [0, t0 + R) rounded up to whole chunks, into S rows (stride ld); Bt the
// keys transposed, chunk-major (transpose_keys).
// With `next` (rows of stride ldn), each chunk also fetches the lines of those rows' same keys into L1, for the pass
// that reads them after these products: in the backward, P's rows, written by the forward long before and read
// otherwise at the full latency of L3 (the rows are short and a row stride apart, too little for the hardware
// prefetchers to follow). Spread over the chunks, the fetches overlap the FMAs. A fetch past a row's end (a chunk is
// whole registers) touches the next row or nothing: prefetches do not fault.
template <int R>
void rows_keys(int64_t hd, int64_t t0, const float* A, int64_t lda, const float* Bt, float alpha, float* S, int64_t ld,
               const float* next = nullptr, int64_t ldn = 0) {
  // The R rows of A transposed into 8 columns (hd × 8; rows past R repeat the last), once for all the chunks: each
  // step of tile_keys then broadcasts from one pointer at fixed offsets. Read in place, the R row pointers left too
  // few integer registers and GCC reloaded them from the stack at every step.
  static_assert(R <= 8, "a tile is at most 8 rows");
  alignas(64) float at[4 * W * 8];
  for (int64_t c0 = 0; c0 < hd; c0 += 8) {
    __m256 r[8], c[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(A + (t0 + std::min(i, R - 1)) * lda + c0);
    Isa::transpose8(r, c);
    for (int i = 0; i < 8; ++i) _mm256_store_ps(at + (c0 + i) * 8, c[i]);
  }
  for (int64_t u = 0; u < t0 + R; u += kKeyChunk) {
    if (next)
      for (int r = 0; r < R; ++r)
        for (int64_t e = 0; e < kKeyChunk; e += kLineFloats)
          _mm_prefetch(reinterpret_cast<const char*>(next + (t0 + r) * ldn + u + e), _MM_HINT_T0);
    tile_keys<R>(hd, at, 8, Bt + u * hd, kKeyChunk, alpha, S + u, ld);
  }
}

// acc[r] += Σ_{j ∈ [j0, j1)} A[r·ars + j·ajs] · Bm[j·ldb + ·]: every row takes every j.
template <int R, int NV>
inline void acc_full(F (&acc)[R][NV], const float* A, int64_t ars, int64_t ajs, int64_t j0, int64_t j1,
                     const float* Bm, int64_t ldb) {
  for (int64_t j = j0; j < j1; ++j) {
    F b[NV];
    for (int v = 0; v < NV; ++v) b[v] = Isa::load(Bm + j * ldb + v * W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const F a = Isa::set1(A[r * ars + j * ajs]);
      for (int v = 0; v < NV; ++v) acc[r][v] = Isa::fma(a, b[v], acc[r][v]);
    }
  }
}

// The diagonal block of a causal tile at j = jb + i: kLower, rows r ≥ i take j for i ∈ [1, R) (query rows reading
// keys); else rows r ≤ i take j for i ∈ [0, R − 1) (key rows reading later queries). Compile-time masks.
template <int R, int NV, bool kLower>
inline void acc_diag(F (&acc)[R][NV], const float* A, int64_t ars, int64_t ajs, int64_t jb, const float* Bm,
                     int64_t ldb) {
#pragma GCC unroll 8
  for (int i = kLower ? 1 : 0; i < (kLower ? R : R - 1); ++i) {
    const int64_t j = jb + i;
    F b[NV];
    for (int v = 0; v < NV; ++v) b[v] = Isa::load(Bm + j * ldb + v * W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      if (kLower ? r < i : r > i) continue;
      const F a = Isa::set1(A[r * ars + j * ajs]);
      for (int v = 0; v < NV; ++v) acc[r][v] = Isa::fma(a, b[v], acc[r][v]);
    }
  }
}

template <int R, int NV>
inline void zero(F (&acc)[R][NV]) {
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = Isa::set1(0.0f);
}

template <int R, int NV>
inline void store(const F (&acc)[R][NV], float* C, int64_t ldc) {
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) Isa::store(C + r * ldc + v * W, acc[r][v]);
}

// Query rows [t0, t0 + R) of C = A·Bm with A lower-triangular [T × T] (row stride T): O = P·v, dq = dS·k.
template <int R, int NV>
void rows_lower(int64_t t0, const float* A, int64_t T, const float* Bm, int64_t ldb, float* C, int64_t ldc) {
  F acc[R][NV];
  zero(acc);
  acc_full<R, NV>(acc, A + t0 * T, T, 1, 0, t0 + 1, Bm, ldb);
  acc_diag<R, NV, true>(acc, A + t0 * T, T, 1, t0, Bm, ldb);
  store(acc, C + t0 * ldc, ldc);
}

// Query rows per block of the key-row products below: the block's rows of every head's Bm within 24 KiB (L1 is
// 32–48 KiB on the CPUs this targets), in multiples of 24, which every rows_for(NV) divides, so that no tile's
// diagonal crosses a block's edge.
constexpr int64_t kQueryUnit = 24;
int64_t query_block(int64_t heads, int64_t hd) {
  return std::max<int64_t>(kQueryUnit, 6144 / (heads * hd) / kQueryUnit * kQueryUnit);
}

// Key rows [u0, u0 + R) of C = Σ_heads Aᵀ·Bm with each A lower-triangular [T × T] (dk = Σ dSᵀ·q, dv = Σ Pᵀ·dO), the
// share of query rows [jb, je): the block holding u0 starts the sums (the diagonal with it), later blocks add to C.
template <int R, int NV>
void rows_upper(int64_t u0, int64_t jb, int64_t je, int64_t T, int64_t heads, const float* A, int64_t a_head,
                const float* Bm, int64_t b_head, int64_t ldb, float* C, int64_t ldc) {
  F acc[R][NV];
  const bool first = u0 >= jb;
  if (first) {
    zero(acc);
  } else {
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = Isa::load(C + (u0 + r) * ldc + v * W);
  }
  for (int64_t i = 0; i < heads; ++i) {
    const float* Ai = A + i * a_head + u0;
    const float* Bi = Bm + i * b_head;
    if (first) {
      acc_diag<R, NV, false>(acc, Ai, 1, T, u0, Bi, ldb);
      acc_full<R, NV>(acc, Ai, 1, T, u0 + R - 1, je, Bi, ldb);
    } else {
      acc_full<R, NV>(acc, Ai, 1, T, jb, je, Bi, ldb);
    }
  }
  store(acc, C + u0 * ldc, ldc);
}

// fn(std::integral_constant<int, Q>{}, t) for the one tile of the last rem < R rows, Q = rem.
template <int Q, typename Fn>
void last_tile(int64_t rem, int64_t t, Fn& fn) {
  if constexpr (Q >= 1) {
    if (rem == Q) fn(std::integral_constant<int, Q>{}, t);
    else last_tile<Q - 1>(rem, t, fn);
  }
}

// fn(std::integral_constant<int, R>{}, t0) for the row tiles [t0, t0 + R) of [0, T), then one smaller tile for the
// rest (one row at a time, a tile would be a chain of FMA latencies).
template <int R, typename Fn>
void for_tiles(int64_t T, Fn&& fn) {
  int64_t t = 0;
  for (; t + R <= T; t += R) fn(std::integral_constant<int, R>{}, t);
  last_tile<R - 1>(T - t, t, fn);
}

template <int NV>
void all_rows_lower(int64_t T, const float* A, const float* Bm, int64_t ldb, float* C, int64_t ldc) {
  for_tiles<rows_for(NV)>(T, [&](auto r, int64_t t) { rows_lower<decltype(r)::value, NV>(t, A, T, Bm, ldb, C, ldc); });
}

// In blocks of query rows (query_block), each block's rows of every head's Bm staying in L1 while every key tile at
// or before the block's end takes its share. Tile by tile over all query rows instead, each tile would stream all of
// Bm from L2 again.
template <int NV>
void all_rows_upper(int64_t T, int64_t heads, const float* A, int64_t a_head, const float* Bm, int64_t b_head,
                    int64_t ldb, float* C, int64_t ldc) {
  static_assert(kQueryUnit % rows_for(NV) == 0, "a tile's diagonal must not cross a query block");
  const int64_t block = query_block(heads, ldb);
  for (int64_t jb = 0; jb < T; jb += block) {
    const int64_t je = std::min(T, jb + block);
    for_tiles<rows_for(NV)>(T, [&](auto r, int64_t u) {
      if (u < je) rows_upper<decltype(r)::value, NV>(u, jb, je, T, heads, A, a_head, Bm, b_head, ldb, C, ldc);
    });
  }
}

// Runs fn.template operator()<NV>() for hd = NV·W.
template <typename Fn>
void with_nv(int64_t hd, Fn&& fn) {
  switch (hd / W) {
    case 1: fn(std::integral_constant<int, 1>{}); break;
    case 2: fn(std::integral_constant<int, 2>{}); break;
    case 3: fn(std::integral_constant<int, 3>{}); break;
    default: fn(std::integral_constant<int, 4>{}); break;
  }
}

// K [T × hd] (row stride ldk) transposed chunk by chunk: key u, column c at Kt[(u / kKeyChunk)·hd·kKeyChunk +
// c·kKeyChunk + u mod kKeyChunk], keys [T, ld) zero, so each chunk of keys is one contiguous hd × kKeyChunk block that
// tile_keys streams. Transposed whole (row c of all ld keys at c·ld), a chunk's hd rows lay a power-of-two stride apart
// at T = 256 (1 KiB) and fell into a few of L1's sets, evicting one another: on Zen 4 at AVX-512, one thread, the
// step's 8 layers of attention took 0–3 ms less forward and backward together with the chunks contiguous (harness,
// alternating runs on a noisy host; same bits).
// Whole 8×8 blocks by register transposes (hd is a multiple of 8 here), the last T mod 8 keys one by one.
void transpose_keys(int64_t T, int64_t hd, const float* K, int64_t ldk, float* Kt, int64_t ld) {
  const auto at = [hd](int64_t u, int64_t c) {
    return (u / kKeyChunk) * hd * kKeyChunk + c * kKeyChunk + u % kKeyChunk;
  };
  int64_t u0 = 0;
  for (; u0 + 8 <= T; u0 += 8) {
    for (int64_t c0 = 0; c0 < hd; c0 += 8) {
      __m256 r[8], c[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(K + (u0 + i) * ldk + c0);
      Isa::transpose8(r, c);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(Kt + at(u0, c0 + i), c[i]);
    }
  }
  for (int64_t u = u0; u < T; ++u) {
    const float* src = K + u * ldk;
    for (int64_t c = 0; c < hd; ++c) Kt[at(u, c)] = src[c];
  }
  for (int64_t c = 0; c < hd; ++c)
    for (int64_t u = T; u < ld; ++u) Kt[at(u, c)] = 0.0f;
}

// Softmax of the causal part of S rows [t0, t0 + R) (stride ld, at least t0 + R rounded up to whole registers) into
// P rows (stride T). The lanes of a row's last register past the diagonal are made −∞ in the register
// (Isa::exp_nonpositive gives exactly 0 there), so the max and the sum run on whole registers: a scalar max reduction
// would be a serial dependency chain, and storing the −∞ lanes one by one before loading the register stalls the load
// on store forwarding.
template <int R>
void softmax_rows(int64_t t0, float* S, int64_t ld, float* P, int64_t T) {
  alignas(64) static constexpr float kIota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const F iota = Isa::load(kIota), ninf = Isa::set1(-INFINITY), zero = Isa::set1(0.0f);
  for (int r = 0; r < R; ++r) {
    const int64_t t = t0 + r, full = (t + 1) / W * W;
    float* s = S + r * ld;
    float* p = P + t * T;
    // 0 in the lanes u ≤ t of the register at `full`, −∞ past them (none when t + 1 fills whole registers).
    const F tail = Isa::add(zero, Isa::zero_where(Isa::below(iota, Isa::set1((float)(t + 1 - full) - 0.5f)), ninf));
    const bool has_tail = full <= t;
    F m0 = ninf, m1 = ninf;
    int64_t u = 0;
    for (; u + 2 * W <= full; u += 2 * W) {
      m0 = Isa::max(m0, Isa::load(s + u));
      m1 = Isa::max(m1, Isa::load(s + u + W));
    }
    if (u < full) m0 = Isa::max(m0, Isa::load(s + u));
    if (has_tail) m1 = Isa::max(m1, Isa::add(Isa::load(s + full), tail));
    const F nmx = Isa::set1(-Isa::rmax(Isa::max(m0, m1)));
    F vz = zero;
    for (u = 0; u < full; u += W) {
      const F x = Isa::exp_nonpositive(Isa::add(Isa::load(s + u), nmx));
      Isa::store(s + u, x);
      vz = Isa::add(vz, x);
    }
    if (has_tail) {
      const F x = Isa::exp_nonpositive(Isa::add(Isa::add(Isa::load(s + full), tail), nmx));
      Isa::store(s + full, x);
      vz = Isa::add(vz, x);
    }
    const float inv = 1.0f / Isa::rsum(vz);
#pragma omp simd
    for (u = 0; u <= t; ++u) p[u] = s[u] * inv;
  }
}

// dS = P ⊙ (dP − Σ_u P dP)·scale on the causal part of rows [t0, t0 + R); dP rows in S (stride ld).
template <int R>
void dscore_rows(int64_t t0, const float* S, int64_t ld, const float* P, float* dS, int64_t T, float scale) {
  for (int r = 0; r < R; ++r) {
    const int64_t t = t0 + r;
    const float* dp = S + r * ld;
    const float* p = P + t * T;
    float* ds = dS + t * T;
    // Two register accumulators, whole registers first: one would be a serial chain of FMA latencies.
    const int64_t full = (t + 1) / W * W;
    F a0 = Isa::set1(0.0f), a1 = Isa::set1(0.0f);
    int64_t u = 0;
    for (; u + 2 * W <= full; u += 2 * W) {
      a0 = Isa::fma(Isa::load(p + u), Isa::load(dp + u), a0);
      a1 = Isa::fma(Isa::load(p + u + W), Isa::load(dp + u + W), a1);
    }
    if (u < full) a0 = Isa::fma(Isa::load(p + u), Isa::load(dp + u), a0);
    float sum = Isa::rsum(Isa::add(a0, a1));
    for (u = full; u <= t; ++u) sum += p[u] * dp[u];
#pragma omp simd
    for (int64_t u = 0; u <= t; ++u) ds[u] = p[u] * (dp[u] - sum) * scale;
  }
}

// Packs `heads` adjacent head slices of T rows (row stride ld, hd floats each) into dense [heads × T × hd] in a
// per-thread buffer (slot picks one of two). The head-dim-in-lanes tiles read a row per step: at the fused QKV
// buffer's stride (2 KiB at d = 256) those rows all fall in the same few L1 sets and miss; packed, they stream.
const float* pack_heads(int slot, int64_t heads, int64_t T, int64_t hd, const float* x, int64_t ld) {
  static thread_local std::vector<float> buf[2];
  std::vector<float>& out = buf[slot];
  if ((int64_t)out.size() < heads * T * hd) out.resize((size_t)(heads * T * hd));
  for (int64_t i = 0; i < heads; ++i)
    for (int64_t t = 0; t < T; ++t) {
      const float* row = x + t * ld + i * hd;
      float* dst = out.data() + (i * T + t) * hd;
      // hd is whole registers here: a call to memmove per 128-byte row cost more than the copy.
      for (int64_t c = 0; c < hd; c += W) Isa::store(dst + c, Isa::load(row + c));
    }
  return out.data();
}

int64_t padded(int64_t T) { return (T + kKeyChunk - 1) / kKeyChunk * kKeyChunk; }

// fn(b, kh, xt, s, own) for each task (sequence b, KV head kh) across the team: xt holds that head's rows of x
// transposed (transpose_keys: padded(T) keys in chunks), s is the thread's scratch for kRA rows of scores, own
// (own_size floats, or null when 0) the thread's own scratch.
template <typename Fn>
void for_kv_tasks(int64_t B, int64_t T, int64_t g, int64_t hd, const float* x, int64_t ldx, int64_t own_size,
                  Fn&& fn) {
  const int64_t ld = padded(T);
#pragma omp parallel
  {
    // Kept per thread across calls (the OpenMP team persists): no fresh pages to fault in at every layer.
    static thread_local std::vector<float> xt, s, own;
    if ((int64_t)xt.size() < hd * ld) xt.resize((size_t)(hd * ld));
    if ((int64_t)s.size() < kRA * ld) s.resize((size_t)(kRA * ld));
    if ((int64_t)own.size() < own_size) own.resize((size_t)own_size);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < B * g; ++task) {
      const int64_t b = task / g, kh = task % g;
      transpose_keys(T, hd, x + b * T * ldx + kh * hd, ldx, xt.data(), ld);
      fn(b, kh, xt.data(), s.data(), own_size > 0 ? own.data() : nullptr);
    }
  }
}
}  // namespace

namespace dn_engine {
bool attention_tiled_supported(int64_t hd) { return hd % W == 0 && hd / W >= 1 && hd / W <= 4; }

void attention_forward_tiled(int64_t B, int64_t T, int64_t h, int64_t g, int64_t hd, const float* q, int64_t ldq,
                             const float* k, const float* v, int64_t ldkv, float* probs, float* out) {
  const int64_t rep = h / g, qw = h * hd, ld = padded(T);
  const float scale = 1.0f / std::sqrt((float)hd);
  for_kv_tasks(B, T, g, hd, k, ldkv, 0, [&](int64_t b, int64_t kh, const float* kt, float* s, float*) {
    const float* V = pack_heads(0, 1, T, hd, v + b * T * ldkv + kh * hd, ldkv);
    for (int64_t hh = kh * rep; hh < (kh + 1) * rep; ++hh) {
      const float* Q = q + b * T * ldq + hh * hd;
      float* P = probs + (b * h + hh) * T * T;
      for_tiles<kRA>(T, [&](auto r, int64_t t) {
        rows_keys<decltype(r)::value>(hd, t, Q, ldq, kt, scale, s, ld);
        softmax_rows<decltype(r)::value>(t, s, ld, P, T);
      });
      float* O = out + b * T * qw + hh * hd;
      with_nv(hd, [&](auto nv) { all_rows_lower<decltype(nv)::value>(T, P, V, hd, O, qw); });
    }
  });
}

void attention_backward_tiled(int64_t B, int64_t T, int64_t h, int64_t g, int64_t hd, const float* dout,
                              const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv,
                              const float* probs, float* dscores, float* dq, float* dk, float* dv) {
  const int64_t rep = h / g, qw = h * hd, ld = padded(T);
  const float scale = 1.0f / std::sqrt((float)hd);
  // A KV group's dS blocks in a per-thread scratch while they fit in L2 (written and read back at once there, never
  // sent out to L3); the caller's dscores buffer otherwise.
  const int64_t group = rep * T * T;
  const bool local = group <= kLocalScores;
  const auto task = [&](int64_t b, int64_t kh, const float* vt, float* s, float* own) {
    const int64_t h0 = kh * rep;
    float* dS0 = local ? own : dscores + (b * h + h0) * T * T;
    const float* K = pack_heads(0, 1, T, hd, k + b * T * ldkv + kh * hd, ldkv);
    for (int64_t hh = h0; hh < h0 + rep; ++hh) {
      const float* dO = dout + b * T * qw + hh * hd;
      const float* P = probs + (b * h + hh) * T * T;
      float* dS = dS0 + (hh - h0) * T * T;
      for_tiles<kRA>(T, [&](auto r, int64_t t) {
        rows_keys<decltype(r)::value>(hd, t, dO, qw, vt, 1.0f, s, ld, P, T);
        dscore_rows<decltype(r)::value>(t, s, ld, P, dS, T, scale);
      });
      float* dQ = dq + b * T * ldq + hh * hd;
      with_nv(hd, [&](auto nv) { all_rows_lower<decltype(nv)::value>(T, dS, K, hd, dQ, ldq); });
    }
    // dk, dv of this KV head: its query heads summed in head order inside each tile.
    const float* P0 = probs + (b * h + h0) * T * T;
    const float* Q0 = pack_heads(0, rep, T, hd, q + b * T * ldq + h0 * hd, ldq);
    const float* dO0 = pack_heads(1, rep, T, hd, dout + b * T * qw + h0 * hd, qw);
    float* dK = dk + b * T * ldkv + kh * hd;
    float* dV = dv + b * T * ldkv + kh * hd;
    with_nv(hd, [&](auto nv) {
      constexpr int NV = decltype(nv)::value;
      all_rows_upper<NV>(T, rep, dS0, T * T, Q0, T * hd, hd, dK, ldkv);
      all_rows_upper<NV>(T, rep, P0, T * T, dO0, T * hd, hd, dV, ldkv);
    });
  };
  for_kv_tasks(B, T, g, hd, v, ldkv, local ? group : 0, task);
}
}  // namespace dn_engine
#else
namespace dn_engine {
bool attention_tiled_supported(int64_t) { return false; }
void attention_forward_tiled(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, int64_t, const float*,
                             const float*, int64_t, float*, float*) {}
void attention_backward_tiled(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*, int64_t,
                              const float*, const float*, int64_t, const float*, float*, float*, float*, float*) {}
}  // namespace dn_engine
#endif
