// The packed codec's decoder (dn_codec.h): argument checks, the portable row decoder (field by field, as the spec
// reads) and the parallel loop over rows that hands chunks of rows to the SIMD decoder (decode_simd.cpp) where the
// CPU and the shape allow it. The portable decoder judges every row the SIMD path does not take.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "codec_internal.h"

namespace dn_codec {
namespace {

constexpr int64_t kChunkRows = 256;  // rows per unit of the decoder's parallel loop

// A least-significant-first reader of one row that never reads outside it: whole 8-byte words while they fit,
// single bytes at the end.
struct RowReader {
  const uint8_t* p;
  const uint8_t* end;
  uint64_t buf = 0;
  int avail = 0;
  RowReader(const uint8_t* row, int64_t len) : p(row), end(row + len) {}
  inline void refill() {
    if (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      buf |= w << avail;
      p += (63 - avail) >> 3;
      avail |= 56;
    } else {
      while (avail <= 56 && p < end) {
        buf |= (uint64_t)*p++ << avail;
        avail += 8;
      }
    }
  }
  // The next `bits` bits (≤ 32); false past the row's end.
  inline bool get(int bits, uint32_t* v) {
    if (avail < bits) {
      refill();
      if (avail < bits) return false;
    }
    *v = (uint32_t)(buf & ((1ull << bits) - 1));
    buf >>= bits;
    avail -= bits;
    return true;
  }
  // A unary code: zero-bits up to a one-bit, at most 24 zeros; false if none within 25 bits.
  inline bool unary(uint32_t* u) {
    if (avail < kQ + 1) refill();
    const uint64_t window = avail >= 64 ? buf : buf & ((1ull << avail) - 1);
    if (!window) return false;
    const int z = __builtin_ctzll(window);
    if (z > kQ) return false;
    *u = (uint32_t)z;
    buf >>= z + 1;
    avail -= z + 1;
    return true;
  }
  // Bits read so far, relative to the row's start `row`.
  inline int64_t consumed(const uint8_t* row) const { return (int64_t)(p - row) * 8 - avail; }
};

}  // namespace

bool decode_row_scalar(const Tables& t, const uint8_t* p, int64_t len, float top, uint32_t* oid, float* olp, Scratch& s) {
  const int32_t k = t.k;
  const int64_t nbits = len * 8;
  RowReader rd(p, len);
  for (int32_t i = 0; i < 2 * k; ++i)
    if (!rd.get(t.width[i], &s.rem[i])) return false;
  for (int32_t i = 0; i < 2 * k; ++i)
    if (!rd.unary(&s.quo[i])) return false;
  for (int32_t i = 0; i < 2 * k; ++i)
    if (s.quo[i] == (uint32_t)kQ && !rd.get(i < k ? t.w : kRankEscape, &s.quo[i])) return false;
  const int64_t pos = rd.consumed(p);
  if (pos <= nbits - 8) return false;  // bytes left over: the row is longer than its codes
  int64_t prev = -1;
  for (int32_t j = 0; j < k; ++j) {
    const int b = t.width[j];
    if ((uint64_t)s.quo[j] > ((uint64_t)t.vocab - 1) >> b) return false;
    prev += (int64_t)(((uint64_t)s.quo[j] << b) | s.rem[j]) + 1;
    if (prev >= t.vocab) return false;
    s.ids[j] = (uint32_t)prev;
  }
  int32_t count[DN_PACKED_MAX_LEVELS + 2] = {0};
  for (int32_t j = 0; j < k; ++j) {
    const uint64_t rank = ((uint64_t)s.quo[k + j] << t.c) | s.rem[k + j];
    if (rank > (uint64_t)t.levels) return false;
    s.lev[j] = t.order[rank];
    count[s.lev[j]]++;
  }
  // Counting sort by level, descending; ties keep ascending id order.
  int32_t acc = 0;
  for (int l = t.levels; l >= 0; --l) {
    const int32_t c = count[l];
    count[l] = acc;
    acc += c;
  }
  for (int32_t j = 0; j < k; ++j) {
    const int32_t at = count[s.lev[j]]++;
    oid[at] = s.ids[j];
    olp[at] = top + t.dec[s.lev[j]];
  }
  return true;
}

}  // namespace dn_codec

using namespace dn_codec;

extern "C" dn_status dn_packed_decode(int64_t n, int32_t k, int32_t vocab, const dn_packed_code* code, const int32_t* offsets,
                                      const uint8_t* data, int64_t data_len, const float* ref, uint32_t* out_ids, float* out_logp,
                                      int32_t options, int64_t* bad_row) {
  *bad_row = -1;
  if (!code || !shape_ok(n, k, vocab, code->levels)) return dn_fail(DN_INVALID_ARGUMENT, "packed decode: bad shape (k %d, vocabulary %d)", k, vocab);
  const int w = escape_width(vocab);
  if (!code_ok(code, k, w)) return dn_fail(DN_INVALID_ARGUMENT, "packed decode: invalid code tables (level order, level Rice parameter ≤ %d, Rice parameters ≤ %d)", DN_PACKED_MAX_LEVEL_RICE, w);
  const Tables t(k, vocab, code);
#ifdef DN_PACKED_SIMD
  const Simd sd(t);
  const bool simd = sd.usable && !(options & DN_PACKED_PORTABLE);
#else
  (void)options;
#endif
  int64_t first_bad = INT64_MAX;

#pragma omp parallel if (n >= 256)
  {
    Scratch s(k);
    // Chunks of rows handed out as threads free up: a thread that shares its core with other work (the reader's
    // hashing thread) takes fewer of them instead of finishing last.
    int64_t my_bad = INT64_MAX;
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < (n + kChunkRows - 1) / kChunkRows; ++c) {
      const int64_t a = c * kChunkRows, b = std::min(n, a + kChunkRows);
      int64_t bad = -1;
#ifdef DN_PACKED_SIMD
      if (simd)
        bad = decode_rows_simd(t, sd, a, b, offsets, data, data_len, ref, out_ids, out_logp, s);
      else
#endif
        for (int64_t r = a; r < b && bad < 0; ++r) {
          const int64_t o = offsets[r], e = offsets[r + 1];
          const bool ok = o >= 0 && o <= e && e <= data_len && decode_row_scalar(t, data + o, e - o, ref[r], out_ids + r * k, out_logp + r * k, s);
          if (!ok) bad = r;
        }
      if (bad >= 0) my_bad = std::min(my_bad, bad);
    }
#pragma omp critical(dn_packed_bad)
    first_bad = std::min(first_bad, my_bad);
  }
  if (first_bad != INT64_MAX) {
    *bad_row = first_bad;
    return dn_fail(DN_INVALID_ARGUMENT, "packed row %lld is malformed", (long long)first_bad);
  }
  return DN_OK;
}
