/* Distillery native C ABI: the packed top-k encoding of the logit cache (format v2, docs/cache-format.md §3.2).
 * One bitstream per row (token position) of k (id, log-probability) entries:
 *   1. the ids in ascending order as gaps g_0 = id_0, g_j = id_j - id_{j-1} - 1, Rice codes with the shard's
 *      parameter b_j for position j (q = g >> b_j; q < 24: q one-bits, a zero-bit, the b_j low bits of g;
 *      otherwise 24 one-bits and g in W = bitlength(V - 1) bits),
 *   2. the k levels in the same order, canonical Huffman codes (lengths ≤ 12, most significant bit first),
 *      level L = #{l in 1..N : log p - log p_top1 >= 2 ln((l - 1/2) / N)}, i.e. N * sqrt(p / p_top1) rounded,
 *   3. zero bits up to the next byte.
 * Bits are packed least significant first. Decoding restores probability order: levels descending, ties by
 * ascending id; log p = ref + 2 ln(L / N) for L ≥ 1, ref + 2 ln(1 / (4N)) for L = 0, where ref is the row's top-1. */
#ifndef DN_PACKED_H
#define DN_PACKED_H
#include "dn_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DN_PACKED_RICE_QMAX 24
#define DN_PACKED_MAX_CODE_LEN 12
#define DN_PACKED_MAX_LEVELS 255

/* Upper bound of one row's encoded bytes. */
int64_t dn_packed_max_row_bytes(int32_t k, int32_t vocab);

/* A shard's code tables from n sample rows (ids/logp n × k, any order within a row): hist[0..levels] counts the
 * levels; rice[0..k-1] gets the Rice parameter b_j that codes the j-th smallest gaps of these rows in the fewest
 * bits. Fails like dn_packed_encode on bad rows. */
dn_status dn_packed_stats(int64_t n, int32_t k, int32_t vocab, int32_t levels, const uint32_t* ids, const float* logp,
                          uint32_t* hist, uint8_t* rice, int64_t* bad_row);

/* Encodes n rows. ids/logp: n × k, one row's entries in any order, ids distinct and < vocab. code_lengths:
 * levels + 1 canonical Huffman code lengths (0 = symbol absent); rice: k Rice parameters (each ≤ W). Writes row r's bytes at
 * data[offsets[r] .. offsets[r + 1]) (offsets[0] = 0; data must hold n * dn_packed_max_row_bytes), and the
 * row's top-1 log-probability (max over the row; -inf when every entry is -inf) to ref[r].
 * Errors: DN_INVALID_ARGUMENT (an id ≥ vocab, a repeated id, a level without a code), DN_NON_FINITE; *bad_row set. */
dn_status dn_packed_encode(int64_t n, int32_t k, int32_t vocab, int32_t levels, const uint8_t* code_lengths,
                           const uint8_t* rice, const uint32_t* ids, const float* logp, int32_t* offsets, uint8_t* data, float* ref,
                           int64_t* bad_row);

/* Decodes n rows: row r's bytes are data[offsets[r] .. offsets[r + 1]) (offsets relative to data, data_len bytes
 * in all). Writes ids and log-probabilities in probability order to out_ids/out_logp (n × k). A malformed row
 * (bad offsets, a stream that ends early or late, an id ≥ vocab, an unused code) fails with DN_INVALID_ARGUMENT
 * and *bad_row; invalid tables fail before any row. Uses the OpenMP threads; rows are decoded four at a time
 * in lockstep, so the four serial bit-position chains overlap. */
dn_status dn_packed_decode(int64_t n, int32_t k, int32_t vocab, int32_t levels, const uint8_t* code_lengths,
                           const uint8_t* rice, const int32_t* offsets, const uint8_t* data, int64_t data_len, const float* ref,
                           uint32_t* out_ids, float* out_logp, int64_t* bad_row);

#ifdef __cplusplus
}
#endif
#endif
