// The packed codec's shard statistics (dn_codec.h): from up to 8192 sampled rows, the histogram of the
// sqrt-probability levels (the level order is built from it) and, per gap position, the Rice parameter that codes
// those rows' gaps in the fewest bits.
#include <algorithm>
#include <vector>

#include "codec_internal.h"

using namespace dn_codec;

namespace {
constexpr int64_t kStatsRows = 8192;
}  // namespace

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
