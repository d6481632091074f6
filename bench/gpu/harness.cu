// Standalone GPU harness for the loss kernels (no Node needed): `check` compares the CUDA kernels
// (fp32, bf16; both kernels) with the CPU kernel per kind × support × T; `dump DIR [rows|cluster]` writes
// inputs and the outputs of one CUDA kernel for torch_check.py; `time N` times forward-kl at N × 128256 × k=64 against a device-to-device copy.
// Built and run by bench/gpu/run.sh.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "loss/dn_loss.h"

namespace {

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float uniform() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (float)((s >> 40) * (1.0 / 16777216.0));
  }
};

struct Data {
  int64_t n, v, k;
  std::vector<float> logits, logp;
  std::vector<int32_t> ids, labels;
};

// Random student logits; a teacher top-k cut from random teacher logits (sorted, normalized over V).
Data make_data(int64_t n, int64_t v, int64_t k, uint64_t seed, float spread) {
  Data d{n, v, k, std::vector<float>(n * v), std::vector<float>(n * k), std::vector<int32_t>(n * k),
         std::vector<int32_t>(n)};
  Rng r(seed);
  for (auto& x : d.logits) x = (r.uniform() - 0.5f) * spread;
  std::vector<double> t(v);
  std::vector<int32_t> order(v);
  for (int64_t i = 0; i < n; ++i) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < v; ++j) m = std::max(m, t[j] = (r.uniform() - 0.5) * spread);
    for (int64_t j = 0; j < v; ++j) s += std::exp(t[j] - m);
    const double lse = m + std::log(s);
    for (int64_t j = 0; j < v; ++j) order[j] = (int32_t)j;
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) { return t[a] > t[b]; });
    for (int64_t j = 0; j < k; ++j) {
      d.ids[i * k + j] = order[j];
      d.logp[i * k + j] = (float)(t[order[j]] - lse);
    }
    d.labels[i] = (i % 5 == 3) ? -100 : (int32_t)(r.uniform() * v) % (int32_t)v;
  }
  return d;
}

const char* kind_name(int k) {
  static const char* names[] = {"ce", "forward-kl", "reverse-kl", "jsd", "skew-kl", "tvd", "sampled"};
  return names[k];
}

dn_loss_params params_for(int kind, int support, float T) {
  dn_loss_params p{};
  p.kind = kind;
  p.support = support;
  p.temperature = T;
  p.beta = 0.5f;
  p.alpha = 0.1f;
  p.scale_t2 = 1;
  p.hard_weight = kind == DN_LOSS_CE ? 1.0f : 0.0f;
  p.soft_weight = kind == DN_LOSS_CE ? 0.0f : 1.0f;
  return p;
}

double counted_rows(const Data& d) {
  double c = 0;
  for (int32_t y : d.labels) c += y != -100;
  return c > 0 ? c : 1;
}

std::vector<float> round_bf16(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = __bfloat162float(__float2bfloat16(x[i]));
  return y;
}

// Max |a − b| / max |b| over the gradient, and the loss relative difference.
struct Cmp {
  double grad_rel, loss_rel;
};

Cmp compare(const std::vector<float>& got, const std::vector<float>& want, double lg, double lw) {
  double md = 0, mw = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    md = std::max(md, (double)std::fabs(got[i] - want[i]));
    mw = std::max(mw, (double)std::fabs(want[i]));
  }
  return {md / std::max(mw, 1e-30), std::fabs(lg - lw) / std::max(std::fabs(lw), 1e-12)};
}

int check(int32_t kernel) {
  struct Shape { int64_t n, v, k; };
  const Shape shapes[] = {{3, 101, 5}, {8, 128256, 64}};
  int failures = 0;
  std::printf("%-11s %-11s %4s %8s %6s | %-12s %-12s | %-12s %-12s\n", "kind", "support", "T", "V", "k",
              "f32 grad", "f32 loss", "bf16 grad", "bf16 loss");
  for (const Shape& sh : shapes) {
    Data d = make_data(sh.n, sh.v, sh.k, 7 + sh.v, 8.0f);
    const double denom = counted_rows(d);
    std::vector<float> bf = round_bf16(d.logits);
    for (int kind = 0; kind <= 5; ++kind) {
      for (int support = 0; support <= 1; ++support) {
        for (float T : {1.0f, 2.5f}) {
          if ((support == 1 && T != 1.0f && kind != 0) || (kind == 0 && support == 1)) continue;
          dn_loss_params p = params_for(kind, support, T);
          std::vector<float> g_cpu(d.n * d.v), g_gpu(d.n * d.v), g_cpu_bf(d.n * d.v), g_gpu_bf(d.n * d.v);
          dn_loss_result rc, rg, rcb, rgb;
          dn_status s1 = dn_loss_rows_f32(&p, d.n, d.v, d.logits.data(), d.v, d.labels.data(), d.ids.data(), d.logp.data(), d.k, denom, g_cpu.data(), &rc);
          dn_status s2 = dn_cuda_loss_rows_host(&p, d.n, d.v, DN_DTYPE_F32, kernel, d.logits.data(), d.labels.data(), d.ids.data(), d.logp.data(), d.k, denom, g_gpu.data(), &rg);
          dn_status s3 = dn_loss_rows_f32(&p, d.n, d.v, bf.data(), d.v, d.labels.data(), d.ids.data(), d.logp.data(), d.k, denom, g_cpu_bf.data(), &rcb);
          dn_status s4 = dn_cuda_loss_rows_host(&p, d.n, d.v, DN_DTYPE_BF16, kernel, d.logits.data(), d.labels.data(), d.ids.data(), d.logp.data(), d.k, denom, g_gpu_bf.data(), &rgb);
          if (s1 || s2 || s3 || s4) {
            std::printf("%s: error %d %d %d %d: %s\n", kind_name(kind), s1, s2, s3, s4, dn_last_error());
            ++failures;
            continue;
          }
          Cmp f = compare(g_gpu, g_cpu, rg.total_sum, rc.total_sum);
          Cmp b = compare(g_gpu_bf, g_cpu_bf, rgb.total_sum, rcb.total_sum);
          // fp32: fast-math exp and float accumulation; bf16: the gradient is stored in bf16 (8 bits).
          const bool ok = f.grad_rel < 1e-4 && f.loss_rel < 1e-4 && b.grad_rel < 2e-2 && b.loss_rel < 1e-3 &&
                          rg.agree == rc.agree && rg.counted == rc.counted;
          failures += !ok;
          std::printf("%-11s %-11s %4.1f %8lld %6lld | %-12.3e %-12.3e | %-12.3e %-12.3e %s\n", kind_name(kind),
                      support ? "bucket" : "renormalize", T, (long long)d.v, (long long)d.k, f.grad_rel, f.loss_rel,
                      b.grad_rel, b.loss_rel, ok ? "ok" : "FAIL");
        }
      }
    }
  }
  // A NaN must be reported at its position.
  Data d = make_data(4, 1000, 8, 3, 4.0f);
  d.logits[2 * 1000 + 77] = NAN;
  dn_loss_params p = params_for(DN_LOSS_FORWARD_KL, 0, 1.0f);
  std::vector<float> g(d.n * d.v);
  dn_loss_result r;
  dn_status st = dn_cuda_loss_rows_host(&p, d.n, d.v, DN_DTYPE_F32, kernel, d.logits.data(), nullptr, d.ids.data(), d.logp.data(), d.k, 4, g.data(), &r);
  const bool nan_ok = st == DN_NON_FINITE && r.bad_row == 2 && r.bad_col == 77;
  std::printf("NaN at (2, 77): %s (%s)\n", nan_ok ? "ok" : "FAIL", dn_last_error());
  failures += !nan_ok;
  std::printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}

void write_file(const std::string& path, const void* data, size_t bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, bytes, f) != bytes) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(2);
  }
  std::fclose(f);
}

// Inputs and CUDA outputs for torch_check.py (the CPU kernel's outputs with use_cpu: a way to check
// the PyTorch side, and the CPU kernel, on a machine without a GPU).
int dump(const std::string& dir, bool use_cpu, int32_t kernel) {
  Data d = make_data(16, 128256, 64, 99, 8.0f);
  const double denom = counted_rows(d);
  write_file(dir + "/logits.f32", d.logits.data(), d.logits.size() * 4);
  write_file(dir + "/ids.i32", d.ids.data(), d.ids.size() * 4);
  write_file(dir + "/logp.f32", d.logp.data(), d.logp.size() * 4);
  write_file(dir + "/labels.i32", d.labels.data(), d.labels.size() * 4);
  FILE* idx = std::fopen((dir + "/cases.tsv").c_str(), "w");
  std::fprintf(idx, "name\tkind\tsupport\tT\tdtype\tn\tv\tk\tloss\n");
  for (int kind = 0; kind <= 5; ++kind) {
    for (int support = 0; support <= 1; ++support) {
      for (float T : {1.0f, 2.0f}) {
        if ((support == 1 && T != 1.0f && kind != 0) || (kind == 0 && support == 1)) continue;
        for (int dtype : {DN_DTYPE_F32, DN_DTYPE_BF16}) {
          dn_loss_params p = params_for(kind, support, T);
          std::vector<float> g(d.n * d.v);
          dn_loss_result r;
          if (use_cpu && dtype == DN_DTYPE_BF16) continue;
          const dn_status st =
              use_cpu ? dn_loss_rows_f32(&p, d.n, d.v, d.logits.data(), d.v, d.labels.data(), d.ids.data(), d.logp.data(), d.k, denom, g.data(), &r)
                      : dn_cuda_loss_rows_host(&p, d.n, d.v, dtype, kernel, d.logits.data(), d.labels.data(), d.ids.data(), d.logp.data(), d.k, denom, g.data(), &r);
          if (st != DN_OK) {
            std::fprintf(stderr, "dump: %s\n", dn_last_error());
            return 1;
          }
          char name[96];
          std::snprintf(name, sizeof(name), "%s_%s_T%.1f_%s", kind_name(kind), support ? "bucket" : "renormalize", T,
                        dtype ? "bf16" : "f32");
          write_file(dir + "/" + name + ".grad.f32", g.data(), g.size() * 4);
          std::fprintf(idx, "%s\t%s\t%s\t%g\t%s\t%lld\t%lld\t%lld\t%.9g\n", name, kind_name(kind),
                       support ? "bucket" : "renormalize", T, dtype ? "bf16" : "f32", (long long)d.n, (long long)d.v,
                       (long long)d.k, r.total_sum / r.counted);
        }
      }
    }
  }
  std::fclose(idx);
  std::printf("dump: wrote %s\n", dir.c_str());
  return 0;
}

__global__ void fill_logits(float* z, int64_t count, float spread) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)(i * 2654435761u) ^ (uint32_t)(i >> 32);
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    z[i] = ((h & 0xffffff) / 16777216.0f - 0.5f) * spread;
  }
}

__global__ void to_bf16(const float* x, __nv_bfloat16* y, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = __float2bfloat16(x[i]);
}

#define CK(x)                                                                          \
  do {                                                                                 \
    cudaError_t e_ = (x);                                                              \
    if (e_ != cudaSuccess) {                                                           \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(3);                                                                    \
    }                                                                                  \
  } while (0)

// forward-kl + gradient at N × 128256 × 64 against a device-to-device copy of the same logits.
int time_it(int64_t n) {
  const int64_t v = 128256, k = 64;
  const size_t nv = (size_t)(n * v);
  float *z, *g;
  __nv_bfloat16 *zb, *gb;
  int32_t *ids, *labels;
  float* logp;
  CK(cudaMalloc(&z, nv * 4));
  CK(cudaMalloc(&g, nv * 4));
  CK(cudaMalloc(&zb, nv * 2));
  CK(cudaMalloc(&gb, nv * 2));
  CK(cudaMalloc(&ids, n * k * 4));
  CK(cudaMalloc(&logp, n * k * 4));
  CK(cudaMalloc(&labels, n * 4));
  fill_logits<<<1024, 256>>>(z, (int64_t)nv, 10.0f);
  to_bf16<<<1024, 256>>>(z, zb, (int64_t)nv);
  std::vector<int32_t> h_ids(n * k), h_labels(n);
  std::vector<float> h_logp(n * k);
  for (int64_t r = 0; r < n; ++r) {
    h_labels[r] = (int32_t)((r * 7919) % v);
    for (int64_t j = 0; j < k; ++j) {
      h_ids[r * k + j] = (int32_t)((r * 7919 + j * 1999) % v);
      h_logp[r * k + j] = -1.0f - 0.1f * j;
    }
  }
  CK(cudaMemcpy(ids, h_ids.data(), n * k * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(logp, h_logp.data(), n * k * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(labels, h_labels.data(), n * 4, cudaMemcpyHostToDevice));
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  auto timed = [&](auto fn) {
    fn();
    CK(cudaDeviceSynchronize());
    const int reps = 10;
    cudaEventRecord(a);
    for (int i = 0; i < reps; ++i) fn();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    return ms / reps;
  };
  dn_loss_params p = params_for(DN_LOSS_FORWARD_KL, 0, 1.0f);
  dn_loss_result res;
  const float copy32 = timed([&] { CK(cudaMemcpy(g, z, nv * 4, cudaMemcpyDeviceToDevice)); });
  const float copy16 = timed([&] { CK(cudaMemcpy(gb, zb, nv * 2, cudaMemcpyDeviceToDevice)); });
  const int32_t rows_k = DN_CUDA_LOSS_KERNEL_ROWS, cluster_k = DN_CUDA_LOSS_KERNEL_CLUSTER;
  const float loss32 = timed([&] {
    if (dn_cuda_loss_rows(&p, n, v, DN_DTYPE_F32, rows_k, z, v, nullptr, ids, logp, k, (double)n, g, &res) != DN_OK) {
      std::fprintf(stderr, "%s\n", dn_last_error());
      std::exit(4);
    }
  });
  const float loss16 = timed([&] {
    if (dn_cuda_loss_rows(&p, n, v, DN_DTYPE_BF16, rows_k, zb, v, nullptr, ids, logp, k, (double)n, gb, &res) != DN_OK) {
      std::fprintf(stderr, "%s\n", dn_last_error());
      std::exit(4);
    }
  });
  const float cl32 = timed([&] {
    if (dn_cuda_loss_rows(&p, n, v, DN_DTYPE_F32, cluster_k, z, v, nullptr, ids, logp, k, (double)n, g, &res) != DN_OK) {
      std::fprintf(stderr, "%s\n", dn_last_error());
      std::exit(4);
    }
  });
  const float cl16 = timed([&] {
    if (dn_cuda_loss_rows(&p, n, v, DN_DTYPE_BF16, cluster_k, zb, v, nullptr, ids, logp, k, (double)n, gb, &res) != DN_OK) {
      std::fprintf(stderr, "%s\n", dn_last_error());
      std::exit(4);
    }
  });
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device: %s\n", prop.name);
  std::printf("| case (N=%lld, V=%lld, k=%lld) | ms | GB/s (read+write of logits) | vs D2D copy |\n", (long long)n,
              (long long)v, (long long)k);
  std::printf("|---|---|---|---|\n");
  auto row = [&](const char* name, float ms, size_t esize, float copy_ms) {
    const double gbs = 2.0 * nv * esize / (ms * 1e-3) / 1e9;
    std::printf("| %s | %.3f | %.0f | %.0f%% |\n", name, ms, gbs, 100.0 * copy_ms / ms);
  };
  row("D2D copy fp32 (baseline)", copy32, 4, copy32);
  row("forward-kl fp32 loss+grad, block per row", loss32, 4, copy32);
  row("forward-kl fp32 loss+grad, cluster per row (sm_90)", cl32, 4, copy32);
  row("D2D copy bf16 (baseline)", copy16, 2, copy16);
  row("forward-kl bf16 loss+grad, block per row", loss16, 2, copy16);
  row("forward-kl bf16 loss+grad, cluster per row (sm_90)", cl16, 2, copy16);
  // The default (block per row) kernel is what the PyTorch comparison uses.
  std::printf("TIME fp32_ms=%.4f bf16_ms=%.4f copy32_ms=%.4f copy16_ms=%.4f\n", loss32, loss16, copy32, copy16);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "check";
  if (cmd == "dump-cpu" && argc > 2) return dump(argv[2], true, DN_CUDA_LOSS_KERNEL_ROWS);
  if (dn_cuda_device_count() == 0) {
    std::printf("no CUDA device visible: nothing to do\n");
    return cmd == "check" ? 0 : 5;
  }
  if (cmd == "check") {
    // Both CUDA kernels: one block per row (the default) and one cluster per row (sm_90).
    int rc = 0;
    for (int32_t kernel : {DN_CUDA_LOSS_KERNEL_ROWS, DN_CUDA_LOSS_KERNEL_CLUSTER}) {
      std::printf("== CUDA kernel: %s\n", kernel == DN_CUDA_LOSS_KERNEL_CLUSTER ? "cluster" : "rows");
      rc |= check(kernel);
    }
    return rc;
  }
  if (cmd == "dump" && argc > 2) {
    const std::string kernel = argc > 3 ? argv[3] : "rows";
    if (kernel != "rows" && kernel != "cluster") {
      std::fprintf(stderr, "dump: the kernel is rows or cluster, got %s\n", kernel.c_str());
      return 2;
    }
    return dump(argv[2], false, kernel == "cluster" ? DN_CUDA_LOSS_KERNEL_CLUSTER : DN_CUDA_LOSS_KERNEL_ROWS);
  }
  if (cmd == "time") return time_it(argc > 2 ? std::atoll(argv[2]) : 8192);
  std::fprintf(stderr, "usage: harness check | dump DIR [rows|cluster] | dump-cpu DIR | time [N]\n");
  return 2;
}
