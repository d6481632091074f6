// CUDA kernels for the fused distillation losses (dn_loss.h): one block per row of V logits (fp32 or
// bf16), two passes over the row (online max/Σexp at T = 1 and at T; then the gradient, written in
// the logits' dtype), the k-entry teacher math (dn_loss_math.h, in float) by one thread in between.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "loss/dn_loss.h"
#include "loss/dn_loss_math.h"
#include "loss_device.cuh"

namespace {
using namespace dn_loss_cuda;

constexpr int kThreads = 512;
constexpr int64_t kMaxK = 4096;  // two k-float arrays must fit in shared memory

template <typename T>
__global__ void loss_rows_kernel(dn_loss_params P, int64_t v, const T* __restrict__ logits, int64_t ld,
                                 const int32_t* __restrict__ labels, const int32_t* __restrict__ ids,
                                 const float* __restrict__ a_all, int64_t k, double denom, T* grad,
                                 RowOut* rows, unsigned long long* bad_flat) {
  extern __shared__ float shmem[];
  __shared__ Online warp_acc[kThreads / 32];
  __shared__ Coef coef;
  __shared__ unsigned long long row_bad;
  const int64_t r = blockIdx.x;
  const T* z = logits + r * ld;
  T* gr = grad + r * v;
  const int tid = threadIdx.x;
  const bool masked = labels && labels[r] == -100;
  const bool soft = P.kind != DN_LOSS_CE && P.soft_weight != 0.0f;
  const bool hard = P.hard_weight != 0.0f;
  const float T_ = P.temperature, invT = 1.0f / T_;
  const bool sameT = P.temperature == 1.0f;
  const float scale = P.scale_t2 ? T_ * T_ : 1.0f;
  if (tid == 0) row_bad = ~0ull;
  __syncthreads();

  // Pass 1: per-thread online max / Σexp, then a block reduction.
  Online acc{-INFINITY, 0.0f, 0.0f, 0};
  unsigned long long my_bad = ~0ull;
  for (int64_t i = tid; i < v; i += blockDim.x) {
    const float x = to_f(z[i]);
    if (!isfinite(x)) {
      if ((unsigned long long)i < my_bad) my_bad = i;
      continue;
    }
    online_push(acc, x, i, invT, sameT);
  }
  if (my_bad != ~0ull) atomicMin(&row_bad, my_bad);
  warp_online(acc, invT, sameT);
  if ((tid & 31) == 0) warp_acc[tid >> 5] = acc;
  __syncthreads();
  if (row_bad != ~0ull) {
    if (tid == 0) {
      atomicMin(bad_flat, (unsigned long long)r * (unsigned long long)v + row_bad);
      rows[r] = RowOut{0, 0, 0, 0, 0};
    }
    return;
  }
  if (masked) {
    for (int64_t i = tid; i < v; i += blockDim.x) gr[i] = from_f<T>(0.0f);
    if (tid == 0) rows[r] = RowOut{0, 0, 0, 0, 0};
    return;
  }

  // One thread finishes the reduction and does the k-entry math; the block waits on coef.
  float* s = shmem;
  float* g = shmem + (k > 0 ? k : 1);
  if (tid == 0) {
    const Online tot = block_online(warp_acc, (int)(blockDim.x / 32), invT, sameT);
    rows[r] = row_teacher_part<T>(P, r, z, tot, labels, ids, a_all, k, denom, s, g, &coef);
  }
  __syncthreads();

  // Pass 2: the full-vocabulary part of the gradient.
  const Coef cf = coef;
  for (int64_t i = tid; i < v; i += blockDim.x) gr[i] = from_f<T>(grad_at(to_f(z[i]), cf, invT));
  __syncthreads();
  // Scatter the label and teacher entries serially (ids may repeat).
  if (tid == 0) {
    const double invD = 1.0 / denom;
    if (hard) gr[labels[r]] = from_f<T>(to_f(gr[labels[r]]) - (float)(P.hard_weight * invD));
    if (soft) {
      const float gs = (float)(P.soft_weight * scale / T_ * invD);
      for (int64_t j = 0; j < k; ++j) {
        const int32_t id = ids[r * k + j];
        gr[id] = from_f<T>(to_f(gr[id]) + gs * g[j]);
      }
    }
  }
}

dn_status cuda_fail(cudaError_t err, const char* what) {
  return dn_fail(DN_CUDA_ERROR, "%s: %s", what, cudaGetErrorString(err));
}

}  // namespace

extern "C" dn_status dn_cuda_loss_rows(const dn_loss_params* params, int64_t n, int64_t v, int32_t dtype,
                                       int32_t kernel, const void* d_logits, int64_t ld, const int32_t* d_labels,
                                       const int32_t* d_teacher_ids, const float* d_teacher_logp, int64_t k,
                                       double denom, void* d_grad, dn_loss_result* out) {
  dn_status st = dn_validate_loss_args(params, n, v, d_logits, ld, d_labels, d_teacher_ids, d_teacher_logp, k,
                                       denom, d_grad, out, /*host_values=*/false);
  if (st != DN_OK) return st;
  if (dtype != DN_DTYPE_F32 && dtype != DN_DTYPE_BF16) return dn_fail(DN_INVALID_ARGUMENT, "loss: unknown dtype %d", dtype);
  if (kernel != DN_CUDA_LOSS_KERNEL_ROWS && kernel != DN_CUDA_LOSS_KERNEL_CLUSTER)
    return dn_fail(DN_INVALID_ARGUMENT, "cuda loss: unknown kernel %d", kernel);
  if (k > kMaxK) return dn_fail(DN_UNSUPPORTED, "cuda loss: k = %lld exceeds %lld", (long long)k, (long long)kMaxK);
  *out = dn_loss_result{0, 0, 0, 0, 0, -1, -1};
  if (n == 0) return DN_OK;
  RowOut* d_rows = nullptr;
  unsigned long long* d_bad = nullptr;
  cudaError_t err = cudaMalloc(&d_rows, sizeof(RowOut) * n);
  if (err != cudaSuccess) return cuda_fail(err, "cudaMalloc");
  if ((err = cudaMalloc(&d_bad, sizeof(unsigned long long))) != cudaSuccess) {
    cudaFree(d_rows);
    return cuda_fail(err, "cudaMalloc");
  }
  cudaMemset(d_bad, 0xff, sizeof(unsigned long long));
  const size_t shbytes = sizeof(float) * 2 * (k > 0 ? k : 1);
  if (kernel == DN_CUDA_LOSS_KERNEL_CLUSTER &&
      cluster_loss_launch(*params, n, v, dtype, d_logits, ld, d_labels, d_teacher_ids, d_teacher_logp, k, denom,
                          d_grad, d_rows, d_bad, &err)) {
    // launched (or failed to launch: err says which)
  } else if (dtype == DN_DTYPE_F32) {
    loss_rows_kernel<float><<<(unsigned)n, kThreads, shbytes>>>(
        *params, v, static_cast<const float*>(d_logits), ld, d_labels, d_teacher_ids, d_teacher_logp, k, denom,
        static_cast<float*>(d_grad), d_rows, d_bad);
  } else {
    loss_rows_kernel<__nv_bfloat16><<<(unsigned)n, kThreads, shbytes>>>(
        *params, v, static_cast<const __nv_bfloat16*>(d_logits), ld, d_labels, d_teacher_ids, d_teacher_logp, k,
        denom, static_cast<__nv_bfloat16*>(d_grad), d_rows, d_bad);
  }
  if (err == cudaSuccess) err = cudaGetLastError();
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  std::vector<RowOut> rows(n);
  unsigned long long bad = ~0ull;
  if (err == cudaSuccess) err = cudaMemcpy(rows.data(), d_rows, sizeof(RowOut) * n, cudaMemcpyDeviceToHost);
  if (err == cudaSuccess) err = cudaMemcpy(&bad, d_bad, sizeof(bad), cudaMemcpyDeviceToHost);
  cudaFree(d_rows);
  cudaFree(d_bad);
  if (err != cudaSuccess) return cuda_fail(err, "cuda loss kernel");
  for (const RowOut& r : rows) {
    out->total_sum += r.total;
    out->hard_sum += r.hard;
    out->soft_sum += r.soft;
    out->counted += r.counted;
    out->agree += r.agree;
  }
  if (bad != ~0ull) {
    out->bad_row = (int64_t)(bad / (unsigned long long)v);
    out->bad_col = (int64_t)(bad % (unsigned long long)v);
    return dn_fail(DN_NON_FINITE, "non-finite student logit at row %lld, column %lld", (long long)out->bad_row,
                   (long long)out->bad_col);
  }
  return DN_OK;
}

namespace {
struct DeviceBuffers {
  std::vector<void*> ptrs;
  ~DeviceBuffers() {
    for (void* p : ptrs) cudaFree(p);
  }
  template <typename T>
  cudaError_t alloc(T** p, size_t bytes) {
    cudaError_t e = cudaMalloc(reinterpret_cast<void**>(p), bytes > 0 ? bytes : 1);
    if (e == cudaSuccess) ptrs.push_back(*p);
    return e;
  }
};
}  // namespace

extern "C" dn_status dn_cuda_loss_rows_host(const dn_loss_params* params, int64_t n, int64_t v, int32_t dtype,
                                            int32_t kernel, const float* logits, const int32_t* labels, const int32_t* teacher_ids,
                                            const float* teacher_logp, int64_t k, double denom, float* grad,
                                            dn_loss_result* out) {
  dn_status st = dn_validate_loss_args(params, n, v, logits, v, labels, teacher_ids, teacher_logp, k, denom, grad, out);
  if (st != DN_OK) return st;
  if (dtype != DN_DTYPE_F32 && dtype != DN_DTYPE_BF16) return dn_fail(DN_INVALID_ARGUMENT, "loss: unknown dtype %d", dtype);
  if (dn_cuda_device_count() == 0) return dn_fail(DN_UNSUPPORTED, "no CUDA device is visible");
  const size_t nv = (size_t)(n * v);
  const size_t esize = dtype == DN_DTYPE_BF16 ? 2 : 4;
  DeviceBuffers buf;
  void *d_logits = nullptr, *d_grad = nullptr;
  int32_t *d_labels = nullptr, *d_ids = nullptr;
  float* d_a = nullptr;
  cudaError_t err = buf.alloc(&d_logits, nv * esize);
  if (err == cudaSuccess) err = buf.alloc(&d_grad, nv * esize);
  if (err == cudaSuccess && labels) err = buf.alloc(&d_labels, sizeof(int32_t) * n);
  if (err == cudaSuccess && teacher_ids) err = buf.alloc(&d_ids, sizeof(int32_t) * n * k);
  if (err == cudaSuccess && teacher_logp) err = buf.alloc(&d_a, sizeof(float) * n * k);
  if (err != cudaSuccess) return cuda_fail(err, "cudaMalloc");
  if (dtype == DN_DTYPE_BF16) {
    std::vector<__nv_bfloat16> tmp(nv);
    for (size_t i = 0; i < nv; ++i) tmp[i] = __float2bfloat16(logits[i]);
    err = cudaMemcpy(d_logits, tmp.data(), nv * esize, cudaMemcpyHostToDevice);
  } else {
    err = cudaMemcpy(d_logits, logits, nv * esize, cudaMemcpyHostToDevice);
  }
  if (err == cudaSuccess && labels) err = cudaMemcpy(d_labels, labels, sizeof(int32_t) * n, cudaMemcpyHostToDevice);
  if (err == cudaSuccess && teacher_ids) err = cudaMemcpy(d_ids, teacher_ids, sizeof(int32_t) * n * k, cudaMemcpyHostToDevice);
  if (err == cudaSuccess && teacher_logp) err = cudaMemcpy(d_a, teacher_logp, sizeof(float) * n * k, cudaMemcpyHostToDevice);
  if (err != cudaSuccess) return cuda_fail(err, "cudaMemcpy to device");
  st = dn_cuda_loss_rows(params, n, v, dtype, kernel, d_logits, v, d_labels, d_ids, d_a, k, denom, d_grad, out);
  if (st != DN_OK) return st;
  if (dtype == DN_DTYPE_BF16) {
    std::vector<__nv_bfloat16> tmp(nv);
    err = cudaMemcpy(tmp.data(), d_grad, nv * esize, cudaMemcpyDeviceToHost);
    for (size_t i = 0; err == cudaSuccess && i < nv; ++i) grad[i] = __bfloat162float(tmp[i]);
  } else {
    err = cudaMemcpy(grad, d_grad, nv * esize, cudaMemcpyDeviceToHost);
  }
  if (err != cudaSuccess) return cuda_fail(err, "cudaMemcpy to host");
  return DN_OK;
}
