/* Benchmark-only hardware limit for bench/gemm.ts: the single-precision FMA rate of this machine at one SIMD width,
 * measured by a loop that does nothing but independent fused multiply-adds on registers (no loads, no stores), on
 * `threads` threads at once. A GEMM cannot run faster than this; bench/gemm.ts prints each product's rate as a share
 * of it. Usage: fma_peak <seconds> <threads>; prints one JSON line {width, threads, gflops, perThread, check}.
 * Built at bench time for the level measured (bench/gemm.ts): cc -O2 -mavx512f -mfma (512-bit), -mavx2 -mfma (256).
 * Twelve accumulators: more than an FMA's latency times the FMAs issued per cycle on the x86 cores of today (4 × 2
 * for 256-bit, 4 × 1 or 4 × 2 for 512-bit), so the chains never wait on each other. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define VFMA _mm512_fmadd_ps
#define VSET1 _mm512_set1_ps
#define VSTORE _mm512_storeu_ps
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define VFMA _mm256_fmadd_ps
#define VSET1 _mm256_set1_ps
#define VSTORE _mm256_storeu_ps
#else
#error "fma_peak is built with -mavx512f -mfma or -mavx2 -mfma"
#endif

#define CHAINS 12
#define INNER 1024

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

struct job {
  double seconds, elapsed, flops;
  float check;
};

static void* run(void* arg) {
  struct job* j = arg;
  vec acc[CHAINS];
  /* x ← x·b + c converges to c / (1 − b) = 1: the values stay finite and normal for any run length. */
  const vec b = VSET1(0.5f), c = VSET1(0.5f);
  for (int i = 0; i < CHAINS; ++i) acc[i] = VSET1((float)i);
  long iters = 0;
  const double t0 = now();
  double t;
  do {
    for (int r = 0; r < INNER; ++r) {
#pragma GCC unroll 12
      for (int i = 0; i < CHAINS; ++i) acc[i] = VFMA(acc[i], b, c);
    }
    iters += INNER;
    t = now();
  } while (t - t0 < j->seconds);
  j->elapsed = t - t0;
  j->flops = (double)iters * CHAINS * LANES * 2;
  /* The accumulators are read after the loop, so the loop is not dead code. */
  float out[LANES];
  j->check = 0;
  for (int i = 0; i < CHAINS; ++i) {
    VSTORE(out, acc[i]);
    for (int l = 0; l < LANES; ++l) j->check += out[l];
  }
  return NULL;
}

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? atof(argv[1]) : 0.5;
  const int threads = argc > 2 ? atoi(argv[2]) : 1;
  if (seconds <= 0 || threads < 1 || threads > 1024) return 2;
  struct job* jobs = calloc((size_t)threads, sizeof(struct job));
  pthread_t* ids = calloc((size_t)threads, sizeof(pthread_t));
  /* Best of 3: a moment when another process held a core lowers one try, not all. */
  double best = 0, best_per_thread = 0;
  float check = 0;
  for (int rep = 0; rep < 3; ++rep) {
    for (int i = 0; i < threads; ++i) {
      jobs[i].seconds = seconds / 3;
      if (pthread_create(&ids[i], NULL, run, &jobs[i]) != 0) return 3;
    }
    double flops = 0, elapsed = 0, per_thread = 1e300;
    check = 0;
    for (int i = 0; i < threads; ++i) {
      pthread_join(ids[i], NULL);
      flops += jobs[i].flops;
      if (jobs[i].elapsed > elapsed) elapsed = jobs[i].elapsed;
      const double rate = jobs[i].flops / jobs[i].elapsed;
      if (rate < per_thread) per_thread = rate;
      check += jobs[i].check;
    }
    if (flops / elapsed > best) {
      best = flops / elapsed;
      best_per_thread = per_thread;
    }
  }
  printf("{\"width\":%d,\"threads\":%d,\"gflops\":%.4f,\"perThread\":%.4f,\"check\":%.6g}\n", LANES * 32, threads,
         best * 1e-9, best_per_thread * 1e-9, check);
  free(jobs);
  free(ids);
  return 0;
}
