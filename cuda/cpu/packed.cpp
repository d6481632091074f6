// The packed top-k encoding of the logit cache (dn_packed.h; spec: docs/cache-format.md §3.2): Rice codes with a
// per-position parameter for the ascending id gaps, canonical Huffman codes for sqrt-probability levels, one
// bitstream per row. Decoding is table-driven, parallel over rows, and runs four rows in lockstep so that their
// serial bit-position chains overlap in the core.
#include <omp.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "dn_packed.h"

namespace {

constexpr int kTableBits = DN_PACKED_MAX_CODE_LEN;
constexpr int kTableSize = 1 << kTableBits;
constexpr int kQ = DN_PACKED_RICE_QMAX;
constexpr int kLanes = 4;
constexpr int64_t kStatsRows = 8192;

inline int bit_length(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }
inline int escape_width(int32_t vocab) { return vocab > 1 ? bit_length((uint64_t)vocab - 1) : 1; }

inline uint32_t reverse_bits(uint32_t code, int len) {
  uint32_t r = 0;
  for (int i = 0; i < len; ++i) r |= ((code >> i) & 1u) << (len - 1 - i);
  return r;
}

// Level thresholds: level(d) = #{l in 1..N : d >= t[l]} for d = x - ref, t[l] = 2 ln((l - 1/2) / N), i.e.
// N * sqrt(p / p_top1) rounded half up; t[0] = -inf so that d = -inf (p = 0) is level 0.
struct Levels {
  int n;
  int top;  // largest power of two <= n
  double t[DN_PACKED_MAX_LEVELS + 1];
  explicit Levels(int levels) : n(levels), top(1) {
    while (top * 2 <= n) top *= 2;
    t[0] = -INFINITY;
    for (int l = 1; l <= n; ++l) t[l] = 2.0 * std::log((l - 0.5) / n);
  }
  // Branch-free binary search for the largest l with d >= t[l].
  inline int of(double d) const {
    int l = 0;
    for (int step = top; step; step >>= 1) {
      const int c = l + step;
      l = (c <= n && d >= t[c]) ? c : l;
    }
    return l;
  }
};

bool shape_ok(int64_t n, int32_t k, int32_t vocab, int32_t levels) {
  return n >= 0 && k >= 1 && vocab >= 1 && k <= vocab && levels >= 1 && levels <= DN_PACKED_MAX_LEVELS;
}

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

// One row's entries as (id << 8 | level), ascending by id; its top-1 log-probability in *ref. Returns DN_OK or
// the failure (recorded with dn_fail) for a NaN/+inf, an id outside the vocabulary or a repeated id.
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

// Canonical codes (DEFLATE order: by length, then symbol), bit-reversed for a least-significant-first stream.
// False when a length exceeds the limit or the lengths over-subscribe the code space.
bool canonical_codes(const uint8_t* lengths, int symbols, uint32_t* codes) {
  int count[DN_PACKED_MAX_CODE_LEN + 1] = {0};
  uint64_t kraft = 0;
  for (int s = 0; s < symbols; ++s) {
    if (lengths[s] > DN_PACKED_MAX_CODE_LEN) return false;
    if (lengths[s]) {
      count[lengths[s]]++;
      kraft += 1ull << (DN_PACKED_MAX_CODE_LEN - lengths[s]);
    }
  }
  if (kraft > (uint64_t)kTableSize) return false;
  uint32_t next[DN_PACKED_MAX_CODE_LEN + 2] = {0};
  uint32_t code = 0;
  for (int len = 1; len <= DN_PACKED_MAX_CODE_LEN; ++len) {
    code = (code + (uint32_t)count[len - 1]) << 1;
    next[len] = code;
  }
  for (int s = 0; s < symbols; ++s) {
    const int len = lengths[s];
    codes[s] = len ? reverse_bits(next[len]++, len) : 0;
  }
  return true;
}

bool rice_ok(const uint8_t* rice, int32_t k, int w) {
  for (int32_t j = 0; j < k; ++j)
    if (rice[j] > w) return false;
  return true;
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

struct DecodeTables {
  int32_t k, vocab, levels, w;
  const uint8_t* rice;
  const uint16_t* table;  // next 12 stream bits → symbol << 4 | code length (0: no code starts so)
  const float* dec;       // level → log-probability offset from the top-1
};

// Refills a least-significant-first bit buffer to at least 56 bits. Reads may run past the row's end into the
// next row's bytes (never past the batch's data): the caller checks the bits a row consumed against its length.
inline void refill(uint64_t& buf, int& avail, const uint8_t*& p, const uint8_t* data_end) {
  if (__builtin_expect(data_end - p >= 8, 1)) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    buf |= w << avail;
    p += (63 - avail) >> 3;
    avail |= 56;
  } else {
    while (avail < 56 && p < data_end) {
      buf |= (uint64_t)*p++ << avail;
      avail += 8;
    }
  }
}

// Decodes the L rows r0 .. r0 + L - 1 in lockstep: the lanes' state lives in registers, so their serial
// bit-position chains overlap. Returns the first malformed row or -1.
template <int L>
int64_t decode_lanes(const DecodeTables& t, int64_t r0, const int32_t* offsets, const uint8_t* data, int64_t data_len,
                     const float* ref, uint32_t* out_ids, float* out_logp, uint32_t* sid, uint8_t* slev, int32_t* start) {
  const int32_t k = t.k;
  const int nl = t.levels + 1;
  const uint8_t* data_end = data + data_len;
  uint64_t buf[L];
  int avail[L];
  const uint8_t* p[L];
  int64_t row_bits[L], prev[L];
  bool ok[L];
#pragma GCC unroll 8
  for (int l = 0; l < L; ++l) {
    const int64_t a = offsets[r0 + l], e = offsets[r0 + l + 1];
    ok[l] = a >= 0 && a <= e && e <= data_len;
    p[l] = ok[l] ? data + a : data_end;
    row_bits[l] = ok[l] ? (e - a) * 8 : 0;
    buf[l] = 0;
    avail[l] = 0;
    prev[l] = -1;
  }
  const uint8_t* first[L];
#pragma GCC unroll 8
  for (int l = 0; l < L; ++l) first[l] = p[l];
  const uint64_t wmask = (1ull << t.w) - 1;
  for (int32_t j = 0; j < k; ++j) {
    const int b = t.rice[j];
    const uint64_t mask = (1ull << b) - 1;
#pragma GCC unroll 8
    for (int l = 0; l < L; ++l) {
      refill(buf[l], avail[l], p[l], data_end);
      const int q = __builtin_ctzll(~buf[l]);
      uint64_t g;
      int used;
      if (__builtin_expect(q < kQ, 1)) {
        used = q + 1 + b;
        g = ((uint64_t)q << b) | ((buf[l] >> (q + 1)) & mask);
      } else {
        used = kQ + t.w;
        g = (buf[l] >> kQ) & wmask;
      }
      if (__builtin_expect(used > avail[l], 0)) {
        ok[l] = false;
        used = 0;
      }
      buf[l] >>= used;
      avail[l] -= used;
      prev[l] += (int64_t)g + 1;
      sid[l * k + j] = (uint32_t)prev[l];
    }
  }
  std::fill(start, start + L * nl, 0);
  for (int32_t j = 0; j < k; ++j) {
#pragma GCC unroll 8
    for (int l = 0; l < L; ++l) {
      if (avail[l] < kTableBits) refill(buf[l], avail[l], p[l], data_end);
      const uint16_t e = t.table[buf[l] & (kTableSize - 1)];
      int len = e & 15;
      if (__builtin_expect(len == 0 || len > avail[l], 0)) {
        ok[l] = false;
        len = 0;
      }
      buf[l] >>= len;
      avail[l] -= len;
      slev[l * k + j] = (uint8_t)(e >> 4);
      start[l * nl + (e >> 4)]++;
    }
  }
  int64_t bad = -1;
  for (int l = 0; l < L; ++l) {
    const int64_t r = r0 + l;
    const int64_t consumed = (int64_t)(p[l] - first[l]) * 8 - avail[l];
    // A row must end inside its last byte: fewer bits would leave bytes unread, more would have read the next row.
    if (!ok[l] || prev[l] >= t.vocab || consumed > row_bits[l] || consumed <= row_bits[l] - 8 + (row_bits[l] == 0 ? 8 : 0)) {
      if (bad < 0) bad = r;
      continue;
    }
    // Counting sort by level, descending; ties keep ascending id order.
    int32_t* st = start + l * nl;
    int32_t acc = 0;
    for (int lv = t.levels; lv >= 0; --lv) {
      const int32_t c = st[lv];
      st[lv] = acc;
      acc += c;
    }
    uint32_t* oid = out_ids + r * k;
    float* olp = out_logp + r * k;
    const float top = ref[r];
    const uint32_t* ids = sid + l * k;
    const uint8_t* lev = slev + l * k;
    for (int32_t j = 0; j < k; ++j) {
      const int lv = lev[j];
      const int32_t at = st[lv]++;
      oid[at] = ids[j];
      olp[at] = top + t.dec[lv];
    }
  }
  return bad;
}

}  // namespace

extern "C" int64_t dn_packed_max_row_bytes(int32_t k, int32_t vocab) {
  const int64_t bits = (int64_t)k * (kQ + escape_width(vocab) + DN_PACKED_MAX_CODE_LEN);
  return (bits + 7) / 8 + 8;
}

extern "C" dn_status dn_packed_stats(int64_t n, int32_t k, int32_t vocab, int32_t levels, const uint32_t* ids,
                                     const float* logp, uint32_t* hist, uint8_t* rice, int64_t* bad_row) {
  *bad_row = -1;
  if (!shape_ok(n, k, vocab, levels)) return dn_fail(DN_INVALID_ARGUMENT, "packed stats: bad shape (k %d, vocabulary %d, levels %d)", k, vocab, levels);
  const int w = escape_width(vocab);
  std::fill(hist, hist + levels + 1, 0u);
  // cost[j][b]: bits to code the j-th gaps of the sampled rows with parameter b.
  std::vector<uint64_t> cost((size_t)k * (w + 1), 0);
  std::vector<uint64_t> keyed(k);
  const Levels lv(levels);
  const int64_t stride = n > kStatsRows ? n / kStatsRows : 1;
  for (int64_t r = 0; r < n; r += stride) {
    float top;
    const dn_status st = prepare_row(r, ids + r * k, logp + r * k, k, vocab, lv, keyed.data(), &top);
    if (st != DN_OK) {
      *bad_row = r;
      return st;
    }
    int64_t prev = -1;
    for (int32_t j = 0; j < k; ++j) {
      const int64_t cur = (int64_t)(keyed[j] >> 8);
      hist[keyed[j] & 0xff]++;
      const uint64_t g = (uint64_t)(cur - prev - 1);
      prev = cur;
      uint64_t* c = cost.data() + (size_t)j * (w + 1);
      for (int b = 0; b <= w; ++b) {
        const uint64_t q = g >> b;
        c[b] += q < (uint64_t)kQ ? q + 1 + b : (uint64_t)(kQ + w);
      }
    }
  }
  for (int32_t j = 0; j < k; ++j) {
    const uint64_t* c = cost.data() + (size_t)j * (w + 1);
    rice[j] = (uint8_t)(std::min_element(c, c + w + 1) - c);
  }
  return DN_OK;
}

extern "C" dn_status dn_packed_encode(int64_t n, int32_t k, int32_t vocab, int32_t levels, const uint8_t* code_lengths,
                                      const uint8_t* rice, const uint32_t* ids, const float* logp, int32_t* offsets,
                                      uint8_t* data, float* ref, int64_t* bad_row) {
  *bad_row = -1;
  if (!shape_ok(n, k, vocab, levels)) return dn_fail(DN_INVALID_ARGUMENT, "packed encode: bad shape (k %d, vocabulary %d, levels %d)", k, vocab, levels);
  uint32_t codes[DN_PACKED_MAX_LEVELS + 1];
  if (!canonical_codes(code_lengths, levels + 1, codes)) return dn_fail(DN_INVALID_ARGUMENT, "packed encode: invalid code lengths");
  const int w = escape_width(vocab);
  if (!rice_ok(rice, k, w)) return dn_fail(DN_INVALID_ARGUMENT, "packed encode: a Rice parameter exceeds %d", w);
  std::vector<uint64_t> keyed(k);
  const Levels lv(levels);
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
      const uint64_t g = (uint64_t)(cur - prev - 1);
      prev = cur;
      const int b = rice[j];
      const uint64_t q = g >> b;
      if (q < (uint64_t)kQ) {
        bw.put((1ull << q) - 1, (int)q + 1);
        if (b) bw.put(g & ((1ull << b) - 1), b);
      } else {
        bw.put((1ull << kQ) - 1, kQ);
        bw.put(g, w);
      }
    }
    for (int32_t j = 0; j < k; ++j) {
      const int l = (int)(keyed[j] & 0xff);
      if (!code_lengths[l]) {
        *bad_row = r;
        return dn_fail(DN_INVALID_ARGUMENT, "row %lld: level %d has no code", (long long)r, l);
      }
      bw.put(codes[l], code_lengths[l]);
    }
    const int64_t end = bw.finish() - data;
    if (end > INT32_MAX) return dn_fail(DN_INVALID_ARGUMENT, "packed encode: more than 2 GiB in one batch");
    offsets[r + 1] = (int32_t)end;
  }
  return DN_OK;
}

extern "C" dn_status dn_packed_decode(int64_t n, int32_t k, int32_t vocab, int32_t levels, const uint8_t* code_lengths,
                                      const uint8_t* rice, const int32_t* offsets, const uint8_t* data, int64_t data_len,
                                      const float* ref, uint32_t* out_ids, float* out_logp, int64_t* bad_row) {
  *bad_row = -1;
  if (!shape_ok(n, k, vocab, levels)) return dn_fail(DN_INVALID_ARGUMENT, "packed decode: bad shape (k %d, vocabulary %d, levels %d)", k, vocab, levels);
  uint32_t codes[DN_PACKED_MAX_LEVELS + 1];
  if (!canonical_codes(code_lengths, levels + 1, codes)) return dn_fail(DN_INVALID_ARGUMENT, "packed decode: invalid code lengths");
  const int w = escape_width(vocab);
  if (!rice_ok(rice, k, w)) return dn_fail(DN_INVALID_ARGUMENT, "packed decode: a Rice parameter exceeds %d", w);
  std::vector<uint16_t> table(kTableSize, 0);
  for (int s = 0; s <= levels; ++s) {
    const int len = code_lengths[s];
    if (!len) continue;
    for (uint32_t i = codes[s]; i < (uint32_t)kTableSize; i += 1u << len) table[i] = (uint16_t)((s << 4) | len);
  }
  float dec[DN_PACKED_MAX_LEVELS + 1];
  dec[0] = (float)(2.0 * std::log(1.0 / (4.0 * levels)));
  for (int l = 1; l <= levels; ++l) dec[l] = (float)(2.0 * std::log((double)l / levels));
  const DecodeTables t{k, vocab, levels, w, rice, table.data(), dec};
  int64_t first_bad = INT64_MAX;

#pragma omp parallel if (n >= 512)
  {
    std::vector<uint32_t> sid((size_t)kLanes * k);
    std::vector<uint8_t> slev((size_t)kLanes * k);
    std::vector<int32_t> start((size_t)kLanes * (levels + 1));
    int64_t my_bad = INT64_MAX;
#pragma omp for schedule(static)
    for (int64_t r0 = 0; r0 < n; r0 += kLanes) {
      int64_t bad = -1;
      if (n - r0 >= kLanes) {
        bad = decode_lanes<kLanes>(t, r0, offsets, data, data_len, ref, out_ids, out_logp, sid.data(), slev.data(), start.data());
      } else {
        for (int64_t r = r0; r < n && bad < 0; ++r)
          bad = decode_lanes<1>(t, r, offsets, data, data_len, ref, out_ids, out_logp, sid.data(), slev.data(), start.data());
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
