// The packed top-k encoding of the logit cache (dn_packed.h; spec: docs/cache-format.md §3.2): per row a fixed
// block of Rice remainders at positions known from the shard's tables, a unary block of the quotients, and the rare
// escaped quotients. Decoding is parallel over rows; with AVX-512 (VBMI2) a row's fields are extracted 16 at a time,
// its ids are a vector prefix sum and its probability order a bitonic sort in registers. The portable path decodes
// field by field and judges every row the SIMD path does not take.
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

constexpr int kQ = DN_PACKED_RICE_QMAX;
constexpr int kRankEscape = DN_PACKED_RANK_ESCAPE_BITS;
constexpr int64_t kStatsRows = 8192;
constexpr int64_t kChunkRows = 256;  // rows per unit of the decoder's parallel loop

inline int bit_length(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }
inline int escape_width(int32_t vocab) { return vocab > 1 ? bit_length((uint64_t)vocab - 1) : 1; }

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

// The shard's code tables, checked: `order` a permutation of the levels, parameters within their ranges.
bool code_ok(const dn_packed_code* code, int32_t k, int w) {
  if (!code || !code->order || !code->rice || code->levels < 1 || code->levels > DN_PACKED_MAX_LEVELS) return false;
  if (code->level_rice < 0 || code->level_rice > DN_PACKED_MAX_LEVEL_RICE) return false;
  bool seen[DN_PACKED_MAX_LEVELS + 1] = {false};
  for (int s = 0; s <= code->levels; ++s) {
    const int l = code->order[s];
    if (l > code->levels || seen[l]) return false;
    seen[l] = true;
  }
  for (int32_t j = 0; j < k; ++j)
    if (code->rice[j] > w) return false;
  return true;
}

// Decoding tables of one shard: every symbol's place in the fixed block (symbols 0..k-1 are the gaps, k..2k-1
// the ranks) and the level → log-probability offsets.
struct Tables {
  int32_t k, vocab, levels, w, c;
  const uint8_t* order;
  std::vector<int32_t> at;     // bit offset of symbol i's remainder in the fixed block
  std::vector<uint8_t> width;  // its width (b_j, or c for ranks)
  int64_t fixed_bits;
  float dec[DN_PACKED_MAX_LEVELS + 1];
  Tables(int32_t k_, int32_t vocab_, const dn_packed_code* code)
      : k(k_), vocab(vocab_), levels(code->levels), w(escape_width(vocab_)), c(code->level_rice), order(code->order),
        at(2 * (size_t)k_), width(2 * (size_t)k_) {
    int64_t p = 0;
    for (int32_t i = 0; i < 2 * k; ++i) {
      width[i] = (uint8_t)(i < k ? code->rice[i] : c);
      at[i] = (int32_t)p;
      p += width[i];
    }
    fixed_bits = p;
    dec[0] = (float)(2.0 * std::log(1.0 / (4.0 * levels)));
    for (int l = 1; l <= levels; ++l) dec[l] = (float)(2.0 * std::log((double)l / levels));
    for (int l = levels + 1; l <= DN_PACKED_MAX_LEVELS; ++l) dec[l] = 0.0f;
  }
};

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

struct Scratch {
  std::vector<uint32_t> rem, quo, ids;
  std::vector<uint8_t> lev;
  explicit Scratch(int32_t k) : rem(2 * (size_t)k), quo(2 * (size_t)k), ids(k), lev(k) {}
};

// The portable decoder of one row, field by field as the spec reads. False for a malformed row.
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

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI__) && defined(__AVX512VBMI2__)
#define DN_PACKED_SIMD 1

// The SIMD decoder, for k a multiple of 16 up to 128 and V ≤ 2^25 (fields of at most 25 bits): the fixed block's
// fields come out 16 at a time (a byte permute, a shift and a mask per group), the unary block's one-bits are
// compressed into their positions, ids are a prefix sum and the probability order is a bitonic sort of 64 or 128
// 16-bit keys (255 - level) << 8 | j in registers. Rows it cannot take (an escape, anything malformed) go to the portable decoder,
// which decides; so the two always agree.
struct Simd {
  bool usable = false;
  int groups = 0;  // 2k / 16
  alignas(64) uint8_t idx[16][64];
  alignas(64) uint32_t shift[16][16], mask[16][16], width[16][16];
  int32_t base[16];
  int chunks = 0;                                         // 32-entry chunks of the two tables below
  alignas(64) uint32_t keytab[DN_PACKED_MAX_LEVELS + 1];  // rank → (255 - level) << 8
  alignas(64) float dec[DN_PACKED_MAX_LEVELS + 1];        // level → log-probability offset
  alignas(64) uint16_t perm[5][32];                       // lane ^ d for d = 1, 2, 4, 8, 16
  __mmask32 net[4][28];                                   // per key register, per network stage: lanes that take the max

  explicit Simd(const Tables& t) {
    const int32_t k = t.k;
    if (k % 16 != 0 || k > 128 || t.vocab > (1 << 25) || (uint64_t)k * (uint64_t)t.vocab >= (1ull << 32) || t.fixed_bits >= 60000) return;
    groups = 2 * k / 16;
    for (int g = 0; g < groups; ++g) {
      base[g] = t.at[16 * g] >> 3;
      for (int l = 0; l < 16; ++l) {
        const int i = 16 * g + l;
        const int byte0 = (t.at[i] >> 3) - base[g];
        if (byte0 + 3 > 63) return;
        for (int m = 0; m < 4; ++m) idx[g][4 * l + m] = (uint8_t)(byte0 + m);
        shift[g][l] = (uint32_t)(t.at[i] & 7);
        width[g][l] = t.width[i];
        mask[g][l] = t.width[i] ? (uint32_t)((1ull << t.width[i]) - 1) : 0u;
      }
    }
    chunks = (t.levels + 32) / 32;
    for (int s = 0; s <= DN_PACKED_MAX_LEVELS; ++s) {
      keytab[s] = s <= t.levels ? (uint32_t)(255 - t.order[s]) << 8 : 0u;
      dec[s] = t.dec[s];
    }
    for (int b = 0; b < 5; ++b)
      for (int l = 0; l < 32; ++l) perm[b][l] = (uint16_t)(l ^ (1 << b));
    int st = 0;
    for (int s = 2; s <= 128; s <<= 1)
      for (int d = s >> 1; d > 0; d >>= 1, ++st)
        for (int r = 0; r < 4; ++r) {
          uint32_t m = 0;
          for (int l = 0; l < 32; ++l) {
            const int i = l + 32 * r;
            if (((i & d) != 0) != ((i & s) != 0)) m |= 1u << l;
          }
          net[r][st] = m;
        }
    usable = true;
  }
};

// tab[v] for 16 lanes of v < 32 · chunks: two-register permutes, one per 32 entries.
inline __m512i lookup(const uint32_t* tab, int chunks, __m512i v) {
  __m512i r = _mm512_permutex2var_epi32(_mm512_load_si512(tab), v, _mm512_load_si512(tab + 16));
  for (int c = 1; c < chunks; ++c) {
    const __m512i x = _mm512_permutex2var_epi32(_mm512_load_si512(tab + 32 * c), v, _mm512_load_si512(tab + 32 * c + 16));
    r = _mm512_mask_blend_epi32(_mm512_cmpge_epu32_mask(v, _mm512_set1_epi32(32 * c)), r, x);
  }
  return r;
}

inline __m512i cmpx16(__m512i x, __m512i perm, __mmask32 take_max) {
  const __m512i y = _mm512_permutexvar_epi16(perm, x);
  return _mm512_mask_blend_epi16(take_max, _mm512_min_epu16(x, y), _mm512_max_epu16(x, y));
}

// Sorts, for each of P rows, the 32·R 16-bit keys of x[p·R .. p·R + R − 1] (key i in register i / 32, lane i % 32)
// ascending: the stages of a bitonic network, within a register by a lane permute, across registers by min/max of
// whole registers. The P rows' networks run interleaved, stage by stage, so their latency chains overlap.
template <int R, int P>
inline void bitonic(const Simd& sd, __m512i* x) {
  int st = 0;
#pragma GCC unroll 8
  for (int s = 2; s <= 32 * R; s <<= 1) {
#pragma GCC unroll 8
    for (int d = s >> 1; d > 0; d >>= 1, ++st) {
      if (d >= 32) {
        const int rd = d / 32;
#pragma GCC unroll 8
        for (int q = 0; q < P * R; ++q) {
          const int r = q % R;
          if (r & rd) continue;
          __m512i* y = x + (q - r);
          const __m512i lo = _mm512_min_epu16(y[r], y[r | rd]), hi = _mm512_max_epu16(y[r], y[r | rd]);
          const bool ascending = ((32 * r) & s) == 0;
          y[r] = ascending ? lo : hi;
          y[r | rd] = ascending ? hi : lo;
        }
        continue;
      }
      const __m512i perm = _mm512_load_si512(sd.perm[__builtin_ctz(d)]);
#pragma GCC unroll 8
      for (int q = 0; q < P * R; ++q) x[q] = cmpx16(x[q], perm, sd.net[q % R][st]);
    }
  }
}

// A row between the SIMD decoder's two halves: its ids (ascending, 16 per register) and its sort keys.
struct SimdRow {
  __m512i ids[8];
  float top;
  uint32_t* oid;
  float* olp;
};

// First half of one row: fields, ids and the sort keys (into x[0 .. regs − 1]); false hands the row to the portable
// decoder. The caller guarantees 64 readable bytes past the row's end.
bool simd_fields(const Tables& t, const Simd& sd, const uint8_t* p, int64_t len, SimdRow& row, __m512i* x) {
  const int32_t k = t.k;
  const int need = 2 * k;
  const int64_t nbits = len * 8;
  if (nbits - t.fixed_bits > 60000) return false;
  // Unary block: the positions (1-based, relative to its start) of its first 2k one-bits, 56 bits at a time.
  alignas(64) uint16_t ends[1 + 256 + 56 + 32];
  ends[0] = 0;
  int count = 0;
  const __m512i iota = _mm512_set_epi16(32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
  for (int64_t pos = t.fixed_bits; count < need; pos += 56) {
    if (pos >= nbits) return false;
    uint64_t w;
    std::memcpy(&w, p + (pos >> 3), 8);
    w = (w >> (pos & 7)) & ((1ull << 56) - 1);
    const __m512i at = _mm512_add_epi16(iota, _mm512_set1_epi16((short)(pos - t.fixed_bits)));
    const __mmask32 lo = (__mmask32)w, hi = (__mmask32)(w >> 32);
    _mm512_storeu_si512(ends + 1 + count, _mm512_maskz_compress_epi16(lo, at));
    count += __builtin_popcount(lo);
    _mm512_storeu_si512(ends + 1 + count, _mm512_maskz_compress_epi16(hi, _mm512_add_epi16(at, _mm512_set1_epi16(32))));
    count += __builtin_popcount(hi);
  }
  const int64_t end = t.fixed_bits + ends[need];
  if (end > nbits || end <= nbits - 8) return false;  // includes rows with escapes: their escape bits follow
  // Quotients u_i = ends[i + 1] - ends[i] - 1; 24 (an escape) goes to the portable decoder.
  alignas(64) uint16_t quo[256];
  for (int v = 0; v < need; v += 32) {
    const __m512i u = _mm512_sub_epi16(_mm512_sub_epi16(_mm512_loadu_si512(ends + 1 + v), _mm512_loadu_si512(ends + v)), _mm512_set1_epi16(1));
    if (_mm512_cmpge_epu16_mask(u, _mm512_set1_epi16(kQ))) return false;
    _mm512_store_si512(quo + v, u);
  }
  const int idg = k / 16;
  __m512i* ids = row.ids;
  for (int g = 0; g < 8; ++g) ids[g] = _mm512_setzero_si512();
  alignas(64) uint16_t keys[128];
  __m512i carry = _mm512_setzero_si512();
  const __m512i zero = _mm512_setzero_si512();
  const __m512i vocab = _mm512_set1_epi32(t.vocab);
  __mmask16 bad = 0;
  for (int g = 0; g < sd.groups; ++g) {
    const __m512i u = _mm512_cvtepu16_epi32(_mm256_load_si256((const __m256i*)(quo + 16 * g)));
    const __m512i bytes = _mm512_loadu_si512(p + sd.base[g]);
    const __m512i r = _mm512_and_si512(_mm512_srlv_epi32(_mm512_permutexvar_epi8(_mm512_load_si512(sd.idx[g]), bytes), _mm512_load_si512(sd.shift[g])), _mm512_load_si512(sd.mask[g]));
    const __m512i val = _mm512_or_si512(_mm512_sllv_epi32(u, _mm512_load_si512(sd.width[g])), r);
    if (g < idg) {
      bad |= _mm512_cmpge_epu32_mask(val, vocab);
      __m512i x = _mm512_add_epi32(val, _mm512_set1_epi32(1));
      x = _mm512_add_epi32(x, _mm512_alignr_epi32(x, zero, 15));
      x = _mm512_add_epi32(x, _mm512_alignr_epi32(x, zero, 14));
      x = _mm512_add_epi32(x, _mm512_alignr_epi32(x, zero, 12));
      x = _mm512_add_epi32(x, _mm512_alignr_epi32(x, zero, 8));
      x = _mm512_add_epi32(x, carry);
      carry = _mm512_permutexvar_epi32(_mm512_set1_epi32(15), x);
      ids[g] = _mm512_sub_epi32(x, _mm512_set1_epi32(1));
    } else {
      bad |= _mm512_cmpgt_epu32_mask(val, _mm512_set1_epi32(t.levels));
      const __m512i j = _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(16 * (g - idg)));
      const __m512i key = _mm512_or_si512(lookup(sd.keytab, sd.chunks, val), j);
      _mm256_store_si256((__m256i*)(keys + 16 * (g - idg)), _mm512_cvtepi32_epi16(key));
    }
  }
  // A gap ≥ V or a rank > N: the portable decoder names the row. Otherwise every gap is below V and
  // k · V < 2^32 (Simd), so the running sum cannot wrap and the last id is below V exactly when this holds.
  if (bad || (uint32_t)_mm_cvtsi128_si32(_mm512_castsi512_si128(carry)) > (uint32_t)t.vocab) return false;
  const int regs = k <= 64 ? 2 : 4;
  for (int32_t j = k; j < 32 * regs; ++j) keys[j] = 0xFFFF;
  for (int r = 0; r < regs; ++r) x[r] = _mm512_load_si512(keys + 32 * r);
  return true;
}

// Second half: the sorted keys x[0 .. regs − 1] put the row's ids and log-probabilities in probability order.
void simd_output(const Tables& t, const Simd& sd, const SimdRow& row, const __m512i* x) {
  const int32_t k = t.k;
  const int regs = k <= 64 ? 2 : 4;
  const __m512i* ids = row.ids;
  alignas(64) uint16_t keys[128];
  for (int r = 0; r < regs; ++r) _mm512_store_si512(keys + 32 * r, x[r]);
  const __m512 topv = _mm512_set1_ps(row.top);
  for (int c = 0; c < k / 16; ++c) {
    const __m512i key = _mm512_cvtepu16_epi32(_mm256_load_si256((const __m256i*)(keys + 16 * c)));
    const __m512i j = _mm512_and_si512(key, _mm512_set1_epi32(127));
    const __m512i lev = _mm512_sub_epi32(_mm512_set1_epi32(255), _mm512_srli_epi32(key, 8));
    __m512i id = _mm512_mask_blend_epi32(_mm512_test_epi32_mask(j, _mm512_set1_epi32(32)), _mm512_permutex2var_epi32(ids[0], j, ids[1]),
                                         _mm512_permutex2var_epi32(ids[2], j, ids[3]));
    if (regs == 4) {
      const __m512i upper = _mm512_mask_blend_epi32(_mm512_test_epi32_mask(j, _mm512_set1_epi32(32)), _mm512_permutex2var_epi32(ids[4], j, ids[5]),
                                                    _mm512_permutex2var_epi32(ids[6], j, ids[7]));
      id = _mm512_mask_blend_epi32(_mm512_test_epi32_mask(j, _mm512_set1_epi32(64)), id, upper);
    }
    _mm512_storeu_si512(row.oid + 16 * c, id);
    _mm512_storeu_ps(row.olp + 16 * c, _mm512_add_ps(topv, _mm512_castsi512_ps(lookup((const uint32_t*)sd.dec, sd.chunks, lev))));
  }
}

constexpr int kSimdRows = 4;

// The networks of `ready` rows (1 ≤ ready ≤ kSimdRows) of 64 keys (2 registers each), or of ready ≤ 2 rows of 128.
inline void sort_rows(const Simd& sd, __m512i* x, int regs, int ready) {
  if (regs == 4) {
    if (ready == 1) bitonic<4, 1>(sd, x);
    else bitonic<4, 2>(sd, x);
    return;
  }
  switch (ready) {
    case 1: bitonic<2, 1>(sd, x); break;
    case 2: bitonic<2, 2>(sd, x); break;
    case 3: bitonic<2, 3>(sd, x); break;
    default: bitonic<2, 4>(sd, x); break;
  }
}

// Decodes rows [a, b) with the SIMD decoder, four rows at a time at k ≤ 64 and two above (their sorting networks
// interleave); the rows it cannot take go to the portable decoder. Returns the first malformed row or -1.
int64_t decode_rows_simd(const Tables& t, const Simd& sd, int64_t a, int64_t b, const int32_t* offsets, const uint8_t* data,
                         int64_t data_len, const float* ref, uint32_t* out_ids, float* out_logp, Scratch& s) {
  const int32_t k = t.k;
  const int regs = k <= 64 ? 2 : 4;
  const int step = regs == 2 ? kSimdRows : 2;
  int64_t bad = -1;
  SimdRow rows[kSimdRows];
  __m512i x[2 * kSimdRows];
  for (int64_t r0 = a; r0 < b; r0 += step) {
    int ready = 0;
    for (int64_t r = r0; r < std::min(r0 + step, b); ++r) {
      const int64_t o = offsets[r], e = offsets[r + 1];
      bool ok = o >= 0 && o <= e && e <= data_len;
      if (ok) {
        SimdRow& row = rows[ready];
        row.top = ref[r];
        row.oid = out_ids + r * k;
        row.olp = out_logp + r * k;
        if (e + 64 <= data_len && simd_fields(t, sd, data + o, e - o, row, x + regs * ready))
          ++ready;
        else
          ok = decode_row_scalar(t, data + o, e - o, ref[r], out_ids + r * k, out_logp + r * k, s);
      }
      if (!ok && bad < 0) bad = r;
    }
    if (!ready) continue;
    sort_rows(sd, x, regs, ready);
    for (int i = 0; i < ready; ++i) simd_output(t, sd, rows[i], x + regs * i);
  }
  return bad;
}
#endif

}  // namespace

extern "C" int64_t dn_packed_max_row_bytes(int32_t k, int32_t vocab) {
  const int w = escape_width(vocab);
  // Fixed block ≤ k (W + 8) bits, unary block ≤ 2k · 25, escapes ≤ k (W + 8).
  const int64_t bits = (int64_t)k * (2 * (w + kRankEscape) + 2 * (kQ + 1));
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
        // The remainder, then a unary code (an escape: 24 zero-bits, a one-bit, the quotient in W bits).
        c[b] += (uint64_t)b + (q < (uint64_t)kQ ? q + 1 : (uint64_t)(kQ + 1 + w));
      }
    }
  }
  for (int32_t j = 0; j < k; ++j) {
    const uint64_t* c = cost.data() + (size_t)j * (w + 1);
    rice[j] = (uint8_t)(std::min_element(c, c + w + 1) - c);
  }
  return DN_OK;
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
