// Internal to the codec's CPU files (dn_codec.h): the format's constants, the level quantizer, the checks of
// shapes and code tables, the row preparation that the encoder and the statistics share, and the decoders' tables
// and scratch. The SIMD decoder (decode_simd.cpp) falls back on the portable one (decode.cpp) row by row.
#pragma once
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstdint>
#include <vector>

#include "codec/dn_codec.h"

namespace dn_codec {

constexpr int kQ = DN_PACKED_RICE_QMAX;
constexpr int kRankEscape = DN_PACKED_RANK_ESCAPE_BITS;

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

inline bool shape_ok(int64_t n, int32_t k, int32_t vocab, int32_t levels) {
  return n >= 0 && k >= 1 && vocab >= 1 && k <= vocab && levels >= 1 && levels <= DN_PACKED_MAX_LEVELS;
}

// The shard's code tables, checked: `order` a permutation of the levels, parameters within their ranges.
inline bool code_ok(const dn_packed_code* code, int32_t k, int w) {
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

// One row's entries as (id << 8 | level), ascending by id; its top-1 log-probability in *ref. Returns DN_OK or
// the failure (recorded with dn_fail) for a NaN/+inf, an id outside the vocabulary or a repeated id (encode.cpp).
dn_status prepare_row(int64_t r, const uint32_t* id, const float* x, int32_t k, int32_t vocab, const Levels& lv,
                      uint64_t* keyed, float* ref);

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

struct Scratch {
  std::vector<uint32_t> rem, quo, ids;
  std::vector<uint8_t> lev;
  explicit Scratch(int32_t k) : rem(2 * (size_t)k), quo(2 * (size_t)k), ids(k), lev(k) {}
};

// The portable decoder of one row, field by field as the spec reads (decode.cpp). False for a malformed row.
bool decode_row_scalar(const Tables& t, const uint8_t* p, int64_t len, float top, uint32_t* oid, float* olp, Scratch& s);

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI__) && defined(__AVX512VBMI2__)
#define DN_PACKED_SIMD 1

// The SIMD decoder, for k a multiple of 16 up to 128 and V ≤ 2^25 (fields of at most 25 bits): the fixed block's
// fields come out 16 at a time (a byte permute, a shift and a mask per group), the unary block's one-bits are
// compressed into their positions, ids are a prefix sum and the probability order is a bitonic sort of 64 or 128
// 16-bit keys (255 - level) << 8 | j in registers. Rows it cannot take (an escape, anything malformed) go to the
// portable decoder, which decides; so the two always agree.
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

  explicit Simd(const Tables& t);
};

// Decodes rows [a, b) (decode_simd.cpp); the rows it cannot take go to decode_row_scalar. Returns the first
// malformed row or -1.
int64_t decode_rows_simd(const Tables& t, const Simd& sd, int64_t a, int64_t b, const int32_t* offsets, const uint8_t* data,
                         int64_t data_len, const float* ref, uint32_t* out_ids, float* out_logp, Scratch& s);
#endif

}  // namespace dn_codec
