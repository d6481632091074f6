/* Benchmark-only baseline for bench/gemm.ts: times OpenBLAS cblas_sgemm on row-major shapes given on the
 * command line as "ta,tb,m,n,k,beta[,copies]" (beta 0 overwrites C, 1 accumulates into it; the timed calls rotate
 * through `copies` copies of A, default 1, as bench/gemm.ts --cold-a does) and prints one JSON line per
 * shape {shape, gflops, cpuGflops, seconds, checksum}
 * (cpuGflops: per second of process CPU time, all threads).
 * Built at bench time: cc -O2 bench/gemm_openblas.c -lopenblas (Debian: apt-get install libopenblas-dev). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char* openblas_get_corename(void);
int openblas_get_num_threads(void);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* CPU time of the whole process (all threads): robust to time-slicing when the cores are shared. */
static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  double min_seconds = argc > 1 ? atof(argv[1]) : 0.5;
  printf("{\"core\":\"%s\",\"threads\":%d}\n", openblas_get_corename(), openblas_get_num_threads());
  for (int s = 2; s < argc; ++s) {
    int ta, tb, m, n, k, copies = 1;
    float beta;
    const int fields = sscanf(argv[s], "%d,%d,%d,%d,%d,%f,%d", &ta, &tb, &m, &n, &k, &beta, &copies);
    if (fields < 6 || copies < 1) return 2;
    float* a = malloc(sizeof(float) * (size_t)m * k * copies);
    float* b = malloc(sizeof(float) * (size_t)k * n);
    float* c = calloc((size_t)m * n, sizeof(float));
    /* The same deterministic inputs as bench/gemm.ts: x_i = ((i * 7919) % 1000) / 1000 - 0.5. */
    for (size_t i = 0; i < (size_t)m * k; ++i) a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int cp = 1; cp < copies; ++cp) memcpy(a + cp * (size_t)m * k, a, sizeof(float) * (size_t)m * k);
    for (size_t i = 0; i < (size_t)k * n; ++i) b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    const int lda = ta ? m : k, ldb = tb ? k : n;
    const enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, 1.0f, a, lda, b, ldb, beta, c, n);
    double best = 1e30, best_cpu = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      int iters = 0;
      double t0 = now(), c0 = cpu_now(), t1;
      do {
        const float* ai = a + (size_t)(iters % copies) * m * k;
        cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, 1.0f, ai, lda, b, ldb, beta, c, n);
        ++iters;
        t1 = now();
      } while (t1 - t0 < min_seconds / 3);
      double per = (t1 - t0) / iters, per_cpu = (cpu_now() - c0) / iters;
      if (per < best) best = per;
      if (per_cpu < best_cpu) best_cpu = per_cpu;
    }
    /* The checksum of one product from C = 0 (an accumulating call has added a different number of them by now). */
    for (size_t i = 0; i < (size_t)m * n; ++i) c[i] = 0.0f;
    cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, 1.0f, a, lda, b, ldb, beta, c, n);
    double checksum = 0;
    for (size_t i = 0; i < (size_t)m * n; i += 97) checksum += c[i];
    printf("{\"shape\":\"%s\",\"seconds\":%.9g,\"gflops\":%.4f,\"cpuGflops\":%.4f,\"checksum\":%.9g}\n", argv[s],
           best, 2.0 * m * n * k / best * 1e-9, 2.0 * m * n * k / best_cpu * 1e-9, checksum);
    free(a);
    free(b);
    free(c);
  }
  return 0;
}
