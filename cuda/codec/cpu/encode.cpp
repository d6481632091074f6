// The packed codec's encoder (dn_codec.h; spec: docs/cache-format.md §3.2): each row's entries sorted by id and
// quantized to levels (prepare_row, shared with the statistics), then written as the fixed block of Rice remainders,
// the unary block of quotients and the escaped quotients, least significant bit first.
#include <algorithm>
#include <cstring>
#include <vector>

#include "codec_internal.h"

namespace dn_codec {
namespace {

// Sorts k keys ascending. AVX-512: each key's rank is the number of smaller keys (16 compares per instruction);
// distinct keys give a permutation, a repeated key leaves a hole that the caller's duplicate check catches.
void sort_keys(uint64_t* keyed, int32_t k, bool narrow) {
#if defined(__AVX512F__)
  if (narrow && k <= 256) {
    alignas(64) uint32_t key[256 + 16];
    alignas(64) uint32_t out[256];
    const int nv = (k + 15) / 16;
    for (int32_t j = 0; j < k; ++j) key[j] = (uint32_t)keyed[j];
    for (int j = k; j < nv * 16; ++j) key[j] = UINT32_MAX;  // never smaller than a key
    __m512i v[16];
    for (int i = 0; i < nv; ++i) v[i] = _mm512_load_si512(key + 16 * i);
    for (int32_t j = 0; j < k; ++j) out[j] = UINT32_MAX;
    for (int32_t j = 0; j < k; ++j) {
      const __m512i b = _mm512_set1_epi32((int)key[j]);
      int rank = 0;
      for (int i = 0; i < nv; ++i) rank += __builtin_popcount(_mm512_cmplt_epu32_mask(v[i], b));
      out[rank] = key[j];
    }
    for (int32_t j = 0; j < k; ++j) keyed[j] = out[j] == UINT32_MAX ? UINT64_MAX : out[j];
    return;
  }
#endif
  (void)narrow;
  std::sort(keyed, keyed + k);
}

// Least-significant-first bit writer; whole 32-bit words go out at once (the output has room for the word that
// may straddle the row's end: dn_packed_max_row_bytes adds slack).
struct BitWriter {
  uint8_t* p;
  uint64_t acc = 0;
  int n = 0;
  explicit BitWriter(uint8_t* out) : p(out) {}
  inline void put(uint64_t v, int bits) {  // bits ≤ 32
    acc |= v << n;
    n += bits;
    if (n >= 32) {
      const uint32_t w = (uint32_t)acc;
      std::memcpy(p, &w, 4);
      p += 4;
      acc >>= 32;
      n -= 32;
    }
  }
  // Writes the remaining bits, zero-padded to a byte; returns the end of the row.
  inline uint8_t* finish() {
    while (n > 0) {
      *p++ = (uint8_t)acc;
      acc >>= 8;
      n -= 8;
    }
    acc = 0;
    n = 0;
    return p;
  }
};

}  // namespace

dn_status prepare_row(int64_t r, const uint32_t* id, const float* x, int32_t k, int32_t vocab, const Levels& lv,
                      uint64_t* keyed, float* ref) {
  float top = -INFINITY;
  for (int32_t j = 0; j < k; ++j) {
    const float v = x[j];
    if (std::isnan(v) || v == INFINITY) return dn_fail(DN_NON_FINITE, "row %lld holds NaN or +inf", (long long)r);
    if (v > top) top = v;
  }
  *ref = top;
  for (int32_t j = 0; j < k; ++j) {
    if (id[j] >= (uint32_t)vocab)
      return dn_fail(DN_INVALID_ARGUMENT, "row %lld: token id %u is outside the vocabulary of %d", (long long)r, id[j], vocab);
    const double d = top == -INFINITY ? -INFINITY : (double)x[j] - (double)top;
    keyed[j] = ((uint64_t)id[j] << 8) | (uint64_t)lv.of(d);
  }
  sort_keys(keyed, k, vocab <= (1 << 24));
  for (int32_t j = 0; j < k; ++j) {
    if (keyed[j] == UINT64_MAX || (j > 0 && (keyed[j] >> 8) <= (keyed[j - 1] >> 8))) {
      // Sorted keys only repeat (or, after a rank sort, leave a hole) when an id repeats: name it.
      std::vector<uint32_t> seen(id, id + k);
      std::sort(seen.begin(), seen.end());
      const auto dup = std::adjacent_find(seen.begin(), seen.end());
      return dn_fail(DN_INVALID_ARGUMENT, "row %lld: token id %u appears twice", (long long)r, dup == seen.end() ? 0u : *dup);
    }
  }
  return DN_OK;
}

}  // namespace dn_codec

using namespace dn_codec;

extern "C" int64_t dn_packed_max_row_bytes(int32_t k, int32_t vocab) {
  const int w = escape_width(vocab);
  // Fixed block ≤ k (W + 8) bits, unary block ≤ 2k · 25, escapes ≤ k (W + 8).
  const int64_t bits = (int64_t)k * (2 * (w + kRankEscape) + 2 * (kQ + 1));
  return (bits + 7) / 8 + 8;
}

extern "C" dn_status dn_packed_encode(int64_t n, int32_t k, int32_t vocab, const dn_packed_code* code, const uint32_t* ids,
                                      const float* logp, int32_t* offsets, uint8_t* data, float* ref, int64_t* bad_row) {
  *bad_row = -1;
  if (!code || !shape_ok(n, k, vocab, code->levels)) return dn_fail(DN_INVALID_ARGUMENT, "packed encode: bad shape (k %d, vocabulary %d)", k, vocab);
  const int w = escape_width(vocab);
  if (!code_ok(code, k, w)) return dn_fail(DN_INVALID_ARGUMENT, "packed encode: invalid code tables (level order, level Rice parameter ≤ %d, Rice parameters ≤ %d)", DN_PACKED_MAX_LEVEL_RICE, w);
  uint8_t rank[DN_PACKED_MAX_LEVELS + 1];
  for (int s = 0; s <= code->levels; ++s) rank[code->order[s]] = (uint8_t)s;
  const int c = code->level_rice;
  const uint64_t cmask = (1ull << c) - 1;
  std::vector<uint64_t> keyed(k);
  std::vector<uint32_t> gap(k), rk(k);
  const Levels lv(code->levels);
  BitWriter bw(data);
  offsets[0] = 0;
  for (int64_t r = 0; r < n; ++r) {
    const dn_status st = prepare_row(r, ids + r * k, logp + r * k, k, vocab, lv, keyed.data(), ref + r);
    if (st != DN_OK) {
      *bad_row = r;
      return st;
    }
    int64_t prev = -1;
    for (int32_t j = 0; j < k; ++j) {
      const int64_t cur = (int64_t)(keyed[j] >> 8);
      gap[j] = (uint32_t)(cur - prev - 1);
      prev = cur;
      rk[j] = rank[keyed[j] & 0xff];
    }
    for (int32_t j = 0; j < k; ++j) {
      const int b = code->rice[j];
      if (b) bw.put(gap[j] & ((1ull << b) - 1), b);
    }
    if (c)
      for (int32_t j = 0; j < k; ++j) bw.put(rk[j] & cmask, c);
    for (int32_t j = 0; j < k; ++j) {
      const uint32_t q = gap[j] >> code->rice[j];
      const int u = q < (uint32_t)kQ ? (int)q : kQ;
      bw.put(1ull << u, u + 1);
    }
    for (int32_t j = 0; j < k; ++j) {
      const uint32_t q = rk[j] >> c;
      const int u = q < (uint32_t)kQ ? (int)q : kQ;
      bw.put(1ull << u, u + 1);
    }
    for (int32_t j = 0; j < k; ++j) {
      const uint32_t q = gap[j] >> code->rice[j];
      if (q >= (uint32_t)kQ) bw.put(q, w);
    }
    for (int32_t j = 0; j < k; ++j) {
      const uint32_t q = rk[j] >> c;
      if (q >= (uint32_t)kQ) bw.put(q, kRankEscape);
    }
    const int64_t end = bw.finish() - data;
    if (end > INT32_MAX) return dn_fail(DN_INVALID_ARGUMENT, "packed encode: more than 2 GiB in one batch");
    offsets[r + 1] = (int32_t)end;
  }
  return DN_OK;
}
