/* The per-row soft-loss math shared by the CPU (Real = double) and CUDA (Real = float) kernels:
 * k teacher entries + the student's log-probabilities at those ids → loss, dL/ds_j and G = Σ_j dL/ds_j.
 * The full-vocabulary gradient is then dL/du_v = g scattered at ids − σ_T(v) · G (u = z / T).
 * Mirrors losses/runtime/reference.ts (float64 TypeScript) line for line. */
#ifndef DN_LOSS_MATH_H
#define DN_LOSS_MATH_H
#include <math.h>

#include "loss/dn_loss.h"

#if defined(__CUDACC__)
#define DN_HD __host__ __device__ inline
#else
#define DN_HD inline
#endif

/* Bucket mode floors both tail masses: below this, float32 inputs cannot resolve them anyway. */
#define DN_TAIL_FLOOR 1e-6

template <typename Real>
DN_HD Real dn_exp(Real x) { return exp(x); }
template <typename Real>
DN_HD Real dn_log(Real x) { return log(x); }
#if defined(__CUDACC__)
template <>
DN_HD float dn_exp<float>(float x) { return expf(x); }
template <>
DN_HD float dn_log<float>(float x) { return logf(x); }
#endif

/* A teacher log-probability of −inf (or a count of 0 for sampled) marks a padding entry. */
template <typename Real>
DN_HD bool dn_entry_valid(int kind, float a) {
  return kind == DN_LOSS_SAMPLED ? a > 0.0f : a > -INFINITY;
}

/* One outcome of a divergence: p, log p, q, log q → adds its loss term, returns H = dL/dq
 * (h = q·H is dL/d log q). Terms with zero mass contribute nothing. */
template <typename Real>
DN_HD Real dn_div_term(int kind, Real beta, Real alpha, Real p, Real lp, Real q, Real lq, Real* loss) {
  switch (kind) {
    case DN_LOSS_FORWARD_KL:
      if (p > 0) *loss += p * (lp - lq);
      return q > 0 ? -p / q : (Real)0;
    case DN_LOSS_REVERSE_KL:
      if (q > 0) *loss += q * (lq - lp);
      return lq - lp + 1;
    case DN_LOSS_JSD: {
      Real m = beta * p + (1 - beta) * q;
      if (!(m > 0)) return 0;
      Real lm = dn_log<Real>(m);
      if (p > 0) *loss += beta * p * (lp - lm);
      if (q > 0) *loss += (1 - beta) * q * (lq - lm);
      return (1 - beta) * (lq - lm);
    }
    case DN_LOSS_SKEW_KL: {
      Real m = alpha * p + (1 - alpha) * q;
      if (!(p > 0) || !(m > 0)) return 0;
      *loss += p * (lp - dn_log<Real>(m));
      return -(1 - alpha) * p / m;
    }
    case DN_LOSS_TVD: {
      Real d = q - p;
      *loss += (Real)0.5 * (d < 0 ? -d : d);
      return d > 0 ? (Real)0.5 : d < 0 ? (Real)-0.5 : (Real)0;
    }
    default:
      return 0;
  }
}

/* Soft loss of one row. a: k teacher values (log-probs, or counts for sampled); s: the student's
 * log σ_T at the same ids. Writes g[j] = dL/ds_j (0 for padding) and *G = Σ g. Returns L (without
 * the T² factor). Renormalize tempers the teacher by T; bucket assumes T = 1 (checked upstream). */
template <typename Real>
DN_HD Real dn_soft_row(int kind, int support, Real T, Real beta, Real alpha, int64_t k,
                       const float* a, const Real* s, Real* g, Real* G) {
  Real loss = 0;
  *G = 0;
  if (kind == DN_LOSS_SAMPLED) {
    Real c = 0;
    for (int64_t j = 0; j < k; ++j) c += dn_entry_valid<Real>(kind, a[j]) ? (Real)a[j] : (Real)0;
    for (int64_t j = 0; j < k; ++j) {
      Real p = (c > 0 && dn_entry_valid<Real>(kind, a[j])) ? (Real)a[j] / c : (Real)0;
      if (p > 0) loss -= p * s[j];
      g[j] = -p;
      *G += g[j];
    }
    return loss;
  }
  if (support == DN_SUPPORT_RENORMALIZE) {
    // Teacher p = softmax over the valid entries of a / T, kept in log space.
    Real amax = -INFINITY, smax = -INFINITY;
    for (int64_t j = 0; j < k; ++j) {
      if (!dn_entry_valid<Real>(kind, a[j])) continue;
      Real at = (Real)a[j] / T;
      amax = at > amax ? at : amax;
      smax = s[j] > smax ? s[j] : smax;
    }
    for (int64_t j = 0; j < k; ++j) g[j] = 0;
    if (amax == -INFINITY) return 0;  // no support at all: nothing to match
    Real asum = 0, ssum = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (!dn_entry_valid<Real>(kind, a[j])) continue;
      asum += dn_exp<Real>((Real)a[j] / T - amax);
      ssum += dn_exp<Real>(s[j] - smax);
    }
    Real alse = amax + dn_log<Real>(asum), slse = smax + dn_log<Real>(ssum);
    if (kind == DN_LOSS_FORWARD_KL) {
      // Against the full-vocabulary student: g = −p, G = −Σp.
      for (int64_t j = 0; j < k; ++j) {
        if (!dn_entry_valid<Real>(kind, a[j])) continue;
        Real lp = (Real)a[j] / T - alse, p = dn_exp<Real>(lp);
        if (p > 0) loss += p * (lp - s[j]);
        g[j] = -p;
        *G -= p;
      }
      return loss;
    }
    // Student restricted to the support and renormalized: q = softmax_j(s_j); g = h − q Σh.
    Real hsum = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (!dn_entry_valid<Real>(kind, a[j])) continue;
      Real lp = (Real)a[j] / T - alse, p = dn_exp<Real>(lp);
      Real lq = s[j] - slse, q = dn_exp<Real>(lq);
      Real H = dn_div_term<Real>(kind, beta, alpha, p, lp, q, lq, &loss);
      g[j] = q * H;
      hsum += g[j];
    }
    for (int64_t j = 0; j < k; ++j) {
      if (!dn_entry_valid<Real>(kind, a[j])) continue;
      g[j] -= dn_exp<Real>(s[j] - slse) * hsum;
    }
    return loss;  // G = 0: the renormalized student does not depend on the rest of the vocabulary
  }
  // Bucket: k + 1 outcomes, the tail one bucket; p_j = exp(a_j), q_j = exp(s_j).
  Real psum = 0, qsum = 0;
  for (int64_t j = 0; j < k; ++j) {
    if (!dn_entry_valid<Real>(kind, a[j])) continue;
    psum += dn_exp<Real>((Real)a[j]);
    qsum += dn_exp<Real>(s[j]);
  }
  const Real floor_ = (Real)DN_TAIL_FLOOR;
  Real pt = 1 - psum, qt = 1 - qsum;
  bool q_clamped = !(qt > floor_);
  pt = pt > floor_ ? pt : floor_;
  qt = q_clamped ? floor_ : qt;
  Real lpt = dn_log<Real>(pt), lqt = dn_log<Real>(qt);
  Real Ht = dn_div_term<Real>(kind, beta, alpha, pt, lpt, qt, lqt, &loss);
  if (q_clamped) Ht = 0;  // a clamped tail is a constant: no gradient flows through it
  for (int64_t j = 0; j < k; ++j) {
    if (!dn_entry_valid<Real>(kind, a[j])) {
      g[j] = 0;
      continue;
    }
    Real lp = (Real)a[j], p = dn_exp<Real>(lp);
    Real lq = s[j], q = dn_exp<Real>(lq);
    Real H = dn_div_term<Real>(kind, beta, alpha, p, lp, q, lq, &loss);
    // dL/ds_j = q_j (H_j − H_tail), written to avoid p/q when q underflows (forward-kl: h = −p).
    Real h = kind == DN_LOSS_FORWARD_KL ? -p : q * H;
    g[j] = h - q * Ht;
    *G += g[j];
  }
  return loss;
}

#ifdef __cplusplus
/* Checks the arguments of dn_loss_rows_f32 / dn_cuda_loss_rows (host-side pointers only for the
 * value checks: with `host_values` false, labels/ids/teacher values are not read). */
dn_status dn_validate_loss_args(const dn_loss_params* params, int64_t n, int64_t v, const void* logits,
                                int64_t ld, const int32_t* labels, const int32_t* teacher_ids,
                                const float* teacher_logp, int64_t k, double denom, const void* grad,
                                const dn_loss_result* out, bool host_values = true);
#endif

#endif
