/* Distillery native C ABI: the packed top-k encoding of the logit cache (format v2, docs/cache-format.md §3.2).
 * One bitstream per row (token position) of k (id, log-probability) entries. The ids, in ascending order, become
 * gaps g_0 = id_0, g_j = id_j - id_{j-1} - 1; each entry's sqrt-probability level
 * L = #{l in 1..N : log p - log p_top1 >= 2 ln((l - 1/2) / N)} (N * sqrt(p / p_top1) rounded) becomes its rank s in
 * the shard's level order (most frequent level first). Both are Rice-coded: gap j with the shard's parameter b_j,
 * ranks with one parameter c. A row holds, bits least significant first:
 *   1. fixed block: the b_j low bits of every gap, then the c low bits of every rank;
 *   2. unary block: for the 2k quotients (gaps g_j >> b_j, then ranks s_j >> c), u = min(quotient, 24) zero-bits
 *      and a one-bit;
 *   3. escape block: each quotient with u = 24, in the same order, in W = bitlength(V - 1) bits (gaps) or 8 (ranks);
 *   4. zero bits up to the next byte.
 * Every field of the fixed block sits at a position known from the shard's parameters alone, so a decoder extracts
 * them all at once; the unary block is a bitmap whose one-bits end the quotients.
 * Decoding restores probability order: levels descending, ties by ascending id; log p = ref + 2 ln(L / N) for L ≥ 1,
 * ref + 2 ln(1 / (4N)) for L = 0, where ref is the row's top-1.
 * Reference: src/store/format/packed-reference.ts (TypeScript, matched bit for bit); tests: test/store/packed.test.ts.
 */
#ifndef DN_CODEC_H
#define DN_CODEC_H
#include "common/dn_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DN_PACKED_RICE_QMAX 24
#define DN_PACKED_MAX_LEVELS 255
#define DN_PACKED_MAX_LEVEL_RICE 8
#define DN_PACKED_RANK_ESCAPE_BITS 8

/* Decode options (bit flags): DN_PACKED_PORTABLE decodes every row with the portable scalar path (the SIMD path, when
 * the CPU and the shape allow it, decodes the same rows to the same values; tests compare the two). */
#define DN_PACKED_DECODE_OPTION_LIST(X) X(DN_PACKED_PORTABLE, 1, "portable")
typedef enum { DN_PACKED_DECODE_OPTION_LIST(DN_ENUM_ENTRY) } dn_packed_decode_option;

/* A shard's code tables. order: levels + 1 bytes, a permutation of 0..levels (order[s] is the level of rank s);
 * level_rice: c in 0..8; rice: k Rice parameters, each ≤ W. */
typedef struct {
  int32_t levels;
  const uint8_t* order;
  int32_t level_rice;
  const uint8_t* rice;
} dn_packed_code;

/* Upper bound of one row's encoded bytes. */
int64_t dn_packed_max_row_bytes(int32_t k, int32_t vocab);

/* A shard's statistics from n sample rows (ids/logp n × k, any order within a row): hist[0..levels] counts the
 * levels; rice[0..k-1] gets the Rice parameter b_j that codes the j-th smallest gaps of these rows in the fewest
 * bits. Fails like dn_packed_encode on bad rows. */
dn_status dn_packed_stats(int64_t n, int32_t k, int32_t vocab, int32_t levels, const uint32_t* ids, const float* logp,
                          uint32_t* hist, uint8_t* rice, int64_t* bad_row);

/* Encodes n rows. ids/logp: n × k, one row's entries in any order, ids distinct and < vocab. Writes row r's bytes at
 * data[offsets[r] .. offsets[r + 1]) (offsets[0] = 0; data must hold n * dn_packed_max_row_bytes), and the row's
 * top-1 log-probability (max over the row; -inf when every entry is -inf) to ref[r].
 * Errors: DN_INVALID_ARGUMENT (an id ≥ vocab, a repeated id, invalid tables), DN_NON_FINITE; *bad_row set. */
dn_status dn_packed_encode(int64_t n, int32_t k, int32_t vocab, const dn_packed_code* code, const uint32_t* ids,
                           const float* logp, int32_t* offsets, uint8_t* data, float* ref, int64_t* bad_row);

/* Decodes n rows: row r's bytes are data[offsets[r] .. offsets[r + 1]) (offsets relative to data, data_len bytes
 * in all). Writes ids and log-probabilities in probability order to out_ids/out_logp (n × k). A malformed row
 * (bad offsets, a stream that ends early or late, an id ≥ vocab, a rank > levels) fails with DN_INVALID_ARGUMENT
 * and *bad_row (the first such row); invalid tables fail before any row. Uses the OpenMP threads. */
dn_status dn_packed_decode(int64_t n, int32_t k, int32_t vocab, const dn_packed_code* code, const int32_t* offsets,
                           const uint8_t* data, int64_t data_len, const float* ref, uint32_t* out_ids, float* out_logp,
                           int32_t options, int64_t* bad_row);

#ifdef __cplusplus
}
#endif
#endif
