// The packed codec's SIMD decoder (AVX-512 with VBMI2; dn_codec.h): a row's fixed-block fields come out 16 at a
// time, its ids are a vector prefix sum and its probability order a bitonic sort in registers. Rows it cannot take
// go to the portable decoder (decode.cpp), which decides, so the two always agree.
#include <algorithm>
#include <cstring>

#include "codec_internal.h"

#ifdef DN_PACKED_SIMD
namespace dn_codec {

Simd::Simd(const Tables& t) {
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

namespace {

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

}  // namespace

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

}  // namespace dn_codec
#endif
