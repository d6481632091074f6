// CUDA loss kernel for sm_90: one thread-block cluster of kCluster CTAs per row of V logits. Each CTA
// loads its slice of the row into shared memory once (the only HBM read), the cluster combines the
// slices' (max, Σexp) through distributed shared memory, CTA 0 does the k-entry teacher math, and
// every CTA writes the gradient of its slice from shared memory: HBM traffic is that of a copy.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "loss_device.cuh"

namespace cg = cooperative_groups;

namespace dn_loss_cuda {
namespace {

constexpr int kCluster = 8;
constexpr int kThreads = 512;
constexpr size_t kMaxSmem = 200 * 1024;

struct CtaShared {
  Online part;              // this CTA's slice statistics
  unsigned long long bad;   // first non-finite column of this slice (row-relative), ~0 if none
  Coef coef;                // CTA 0: the row's gradient coefficients
  int state;                // CTA 0: 0 = compute, 1 = non-finite row, 2 = ignored row
};

template <typename T>
__global__ void loss_cluster_kernel(dn_loss_params P, int64_t v, int64_t chunk, const T* __restrict__ logits,
                                    int64_t ld, const int32_t* __restrict__ labels, const int32_t* __restrict__ ids,
                                    const float* __restrict__ a_all, int64_t k, double denom, T* grad,
                                    RowOut* rows, unsigned long long* bad_flat) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(16) unsigned char dyn[];
  __shared__ CtaShared cs;
  __shared__ Online warp_acc[kThreads / 32];
  cg::cluster_group cluster = cg::this_cluster();
  const unsigned rank = cluster.block_rank();
  const int64_t r = blockIdx.x / kCluster;
  const int64_t c0 = (int64_t)rank * chunk;
  const int64_t len = c0 < v ? (c0 + chunk <= v ? chunk : v - c0) : 0;
  const T* z = logits + r * ld;
  T* gr = grad + r * v;
  T* slice = reinterpret_cast<T*>(dyn);
  float* s = reinterpret_cast<float*>(dyn + ((chunk * sizeof(T) + 15) / 16) * 16);
  float* g = s + (k > 0 ? k : 1);
  const int tid = threadIdx.x;
  const float invT = 1.0f / P.temperature;
  const bool sameT = P.temperature == 1.0f;
  if (tid == 0) cs.bad = ~0ull;
  __syncthreads();

  // Pass 1 (the only read of the row): slice → shared memory and per-thread online statistics.
  Online acc{-INFINITY, 0.0f, 0.0f, 0};
  unsigned long long my_bad = ~0ull;
  for (int64_t i = tid; i < len; i += blockDim.x) {
    const T xv = z[c0 + i];
    slice[i] = xv;
    const float x = to_f(xv);
    if (!isfinite(x)) {
      if ((unsigned long long)(c0 + i) < my_bad) my_bad = c0 + i;
      continue;
    }
    online_push(acc, x, c0 + i, invT, sameT);
  }
  if (my_bad != ~0ull) atomicMin(&cs.bad, my_bad);
  warp_online(acc, invT, sameT);
  if ((tid & 31) == 0) warp_acc[tid >> 5] = acc;
  __syncthreads();
  if (tid == 0) {
    cs.part = block_online(warp_acc, (int)(blockDim.x / 32), invT, sameT);
  }
  cluster.sync();

  // CTA 0 combines the slices (in rank order, so ties keep the first index) and does the teacher part.
  if (rank == 0 && tid == 0) {
    Online tot{-INFINITY, 0.0f, 0.0f, 0};
    unsigned long long bad = ~0ull;
    for (int q = 0; q < kCluster; ++q) {
      const CtaShared* other = cluster.map_shared_rank(&cs, q);
      combine(tot, other->part, invT, sameT);
      if (other->bad < bad) bad = other->bad;
    }
    if (bad != ~0ull) {
      atomicMin(bad_flat, (unsigned long long)r * (unsigned long long)v + bad);
      rows[r] = RowOut{0, 0, 0, 0, 0};
      cs.state = 1;
    } else if (labels && labels[r] == -100) {
      rows[r] = RowOut{0, 0, 0, 0, 0};
      cs.state = 2;
    } else {
      rows[r] = row_teacher_part<T>(P, r, z, tot, labels, ids, a_all, k, denom, s, g, &cs.coef);
      cs.state = 0;
    }
  }
  cluster.sync();

  // Pass 2: the gradient of this slice from shared memory, then this slice's label/teacher entries.
  const CtaShared* lead = cluster.map_shared_rank(&cs, 0);
  const int state = lead->state;
  if (state == 2) {
    for (int64_t i = tid; i < len; i += blockDim.x) gr[c0 + i] = from_f<T>(0.0f);
  } else if (state == 0) {
    const Coef cf = lead->coef;
    for (int64_t i = tid; i < len; i += blockDim.x) gr[c0 + i] = from_f<T>(grad_at(to_f(slice[i]), cf, invT));
    __syncthreads();
    if (tid == 0) {
      const bool soft = P.kind != DN_LOSS_CE && P.soft_weight != 0.0f;
      const float scale = P.scale_t2 ? P.temperature * P.temperature : 1.0f;
      const double invD = 1.0 / denom;
      if (P.hard_weight != 0.0f) {
        const int32_t y = labels[r];
        if (y >= c0 && y < c0 + len) gr[y] = from_f<T>(to_f(gr[y]) - (float)(P.hard_weight * invD));
      }
      if (soft) {
        const float* g0 = cluster.map_shared_rank(g, 0);
        const float gs = (float)(P.soft_weight * scale / P.temperature * invD);
        for (int64_t j = 0; j < k; ++j) {
          const int32_t id = ids[r * k + j];
          if (id >= c0 && id < c0 + len) gr[id] = from_f<T>(to_f(gr[id]) + gs * g0[j]);
        }
      }
    }
  }
  cluster.sync();  // CTA 0's shared memory must outlive every remote read
#endif
}

template <typename T>
cudaError_t launch(const dn_loss_params& P, int64_t n, int64_t v, int64_t chunk, size_t smem, const void* logits,
                   int64_t ld, const int32_t* labels, const int32_t* ids, const float* a, int64_t k, double denom,
                   void* grad, RowOut* rows, unsigned long long* bad) {
  cudaError_t err = cudaFuncSetAttribute(loss_cluster_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (err != cudaSuccess) return err;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((unsigned)(n * kCluster), 1, 1);
  cfg.blockDim = dim3(kThreads, 1, 1);
  cfg.dynamicSmemBytes = smem;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = kCluster;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, loss_cluster_kernel<T>, P, v, chunk, static_cast<const T*>(logits), ld, labels, ids,
                            a, k, denom, static_cast<T*>(grad), rows, bad);
}

}  // namespace

bool cluster_loss_launch(const dn_loss_params& P, int64_t n, int64_t v, int32_t dtype, const void* logits, int64_t ld,
                         const int32_t* labels, const int32_t* ids, const float* a, int64_t k, double denom, void* grad,
                         RowOut* rows, unsigned long long* bad, cudaError_t* err) {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  if (major < 9 || n * kCluster > 0x7fffffff) return false;
  const size_t esize = dtype == DN_DTYPE_BF16 ? 2 : 4;
  const int64_t chunk = (v + kCluster - 1) / kCluster;
  const size_t smem = ((chunk * esize + 15) / 16) * 16 + sizeof(float) * 2 * (k > 0 ? k : 1);
  if (smem > kMaxSmem) return false;
  *err = dtype == DN_DTYPE_BF16 ? launch<__nv_bfloat16>(P, n, v, chunk, smem, logits, ld, labels, ids, a, k, denom, grad, rows, bad)
                                : launch<float>(P, n, v, chunk, smem, logits, ld, labels, ids, a, k, denom, grad, rows, bad);
  return true;
}

}  // namespace dn_loss_cuda
