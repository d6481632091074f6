// Device helpers shared by the CUDA loss kernels (loss_rows.cu: one block per row; loss_cluster.cu: one
// thread-block cluster per row on sm_90): dtype conversion, the online (max, Σexp) pair with its update and
// reductions, the per-row teacher part that turns a row's statistics into loss + coefficients, and the
// gradient at one logit from those coefficients.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "loss/dn_loss.h"
#include "loss/dn_loss_math.h"

namespace dn_loss_cuda {

__device__ inline float to_f(float x) { return x; }
__device__ inline float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ inline T from_f(float x);
template <>
__device__ inline float from_f<float>(float x) { return x; }
template <>
__device__ inline __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

struct RowOut {
  double total, hard, soft;
  int counted, agree;
};

// A row's gradient coefficients (row_teacher_part): c1, b1 = −lse1, cT, bT = −lseT.
struct Coef {
  float c1, b1, cT, bT;
};

// (max, Σexp(x − max)) pairs combine associatively; ties in max keep the smaller index.
struct Online {
  float m, s1, sT;
  int64_t arg;
};

__device__ inline void combine(Online& a, const Online& b, float invT, bool sameT) {
  if (b.m == -INFINITY) return;
  if (a.m == -INFINITY) {
    a = b;
    return;
  }
  if (b.m > a.m || (b.m == a.m && b.arg < a.arg)) {
    const float d = a.m - b.m;
    a.s1 = a.s1 * __expf(d) + b.s1;
    if (!sameT) a.sT = a.sT * __expf(d * invT) + b.sT;
    a.m = b.m;
    a.arg = b.arg;
  } else {
    const float d = b.m - a.m;
    a.s1 += b.s1 * __expf(d);
    if (!sameT) a.sT += b.sT * __expf(d * invT);
  }
}

__device__ inline Online shfl_online(const Online& o, int offset) {
  Online r;
  r.m = __shfl_down_sync(0xffffffffu, o.m, offset);
  r.s1 = __shfl_down_sync(0xffffffffu, o.s1, offset);
  r.sT = __shfl_down_sync(0xffffffffu, o.sT, offset);
  r.arg = __shfl_down_sync(0xffffffffu, o.arg, offset);
  return r;
}

// Adds the finite logit x at column col to a thread's running statistics.
__device__ inline void online_push(Online& acc, float x, int64_t col, float invT, bool sameT) {
  if (x > acc.m) {
    const float d = acc.m - x;  // −inf on the first element: exp → 0
    acc.s1 = acc.s1 * __expf(d) + 1.0f;
    if (!sameT) acc.sT = acc.sT * __expf(d * invT) + 1.0f;
    acc.m = x;
    acc.arg = col;
  } else {
    acc.s1 += __expf(x - acc.m);
    if (!sameT) acc.sT += __expf((x - acc.m) * invT);
  }
}

// Combines the statistics of a warp's 32 threads into lane 0's.
__device__ inline void warp_online(Online& acc, float invT, bool sameT) {
  for (int off = 16; off > 0; off >>= 1) combine(acc, shfl_online(acc, off), invT, sameT);
}

// The block's statistics from its warps' (warp_acc[0 .. warps − 1]), in warp order.
__device__ inline Online block_online(const Online* warp_acc, int warps, float invT, bool sameT) {
  Online tot = warp_acc[0];
  for (int w = 1; w < warps; ++w) combine(tot, warp_acc[w], invT, sameT);
  return tot;
}

// The full-vocabulary part of d total / d z at one logit: c1·exp(x + b1) + cT·exp(x/T + bT).
__device__ inline float grad_at(float x, const Coef& c, float invT) {
  float out = 0.0f;
  if (c.c1 != 0.0f) out += c.c1 * __expf(x + c.b1);
  if (c.cT != 0.0f) out += c.cT * __expf(x * invT + c.bT);
  return out;
}


// Thread 0's work between the passes: log-sum-exps from the row statistics, ce, the k-entry soft
// part (s, g: k floats of scratch), agreement; writes the gradient coefficients to coef and returns the
// row's sums. z is the row in global memory (the label and teacher ids are gathered from it).
template <typename T>
__device__ inline RowOut row_teacher_part(const dn_loss_params& P, int64_t r, const T* z, const Online& tot,
                                          const int32_t* labels, const int32_t* ids, const float* a_all, int64_t k,
                                          double denom, float* s, float* g, Coef* coef) {
  const bool soft = P.kind != DN_LOSS_CE && P.soft_weight != 0.0f;
  const bool hard = P.hard_weight != 0.0f;
  const float T_ = P.temperature, invT = 1.0f / T_;
  const bool sameT = P.temperature == 1.0f;
  const float scale = P.scale_t2 ? T_ * T_ : 1.0f;
  const bool need_sigmaT = soft && (P.kind == DN_LOSS_FORWARD_KL || P.kind == DN_LOSS_SAMPLED ||
                                    P.support == DN_SUPPORT_BUCKET);
  const float lse1 = tot.m + logf(tot.s1);
  const float lseT = sameT ? lse1 : tot.m * invT + logf(tot.sT);
  const double invD = 1.0 / denom;
  float c1 = 0.0f, cT = 0.0f;
  double ce = 0.0;
  if (hard) {
    ce = (double)lse1 - to_f(z[labels[r]]);
    c1 = (float)(P.hard_weight * invD);
  }
  float L = 0.0f, G = 0.0f;
  const int32_t* rid = ids ? ids + r * k : nullptr;
  const float* a = a_all ? a_all + r * k : nullptr;
  if (soft) {
    for (int64_t j = 0; j < k; ++j) s[j] = to_f(z[rid[j]]) * invT - lseT;
    L = dn_soft_row<float>(P.kind, P.support, T_, P.beta, P.alpha, k, a, s, g, &G);
    if (need_sigmaT) cT = (float)(-P.soft_weight * scale / T_ * G * invD);
  }
  int agree = 0;
  if (a && k > 0) {
    int64_t best = -1;
    for (int64_t j = 0; j < k; ++j)
      if (dn_entry_valid<float>(P.kind, a[j]) && (best < 0 || a[j] > a[best])) best = j;
    agree = best >= 0 && rid[best] == tot.arg;
  }
  if (sameT) {
    c1 += cT;
    cT = 0.0f;
  }
  *coef = Coef{c1, -lse1, cT, -lseT};
  return RowOut{P.hard_weight * ce + (double)P.soft_weight * scale * L, ce, (double)scale * L, 1, agree};
}

// The cluster kernel (loss_cluster.cu): one thread-block cluster per row on sm_90, the row read from
// HBM once and kept in distributed shared memory; chosen with DN_CUDA_LOSS_KERNEL_CLUSTER (not the
// default until it has been checked on a GPU). Returns false (launching nothing) when it does not apply.
bool cluster_loss_launch(const dn_loss_params& P, int64_t n, int64_t v, int32_t dtype, const void* logits,
                         int64_t ld, const int32_t* labels, const int32_t* ids, const float* a, int64_t k,
                         double denom, void* grad, RowOut* rows, unsigned long long* bad, cudaError_t* err);

}  // namespace dn_loss_cuda
