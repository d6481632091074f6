/* Distillery native C ABI: shared definitions (status codes, thread control, device info).
 * Each kernel family declares its entry points in its own header (dn_<family>.h) on top of this. */
#ifndef DN_COMMON_H
#define DN_COMMON_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Enums whose values TypeScript passes in are written once, as a list X(C name, value, "TypeScript name"): the list
 * expands to the C enum with DN_ENUM_ENTRY, and binding/ exports the same list as `enums.<group>` (name → value), so
 * the TypeScript side looks values up by name instead of repeating them (cuda/README.md, "Enums"). */
#define DN_ENUM_ENTRY(name, value, ts_name) name = value,

/* Every entry point returns a status; 0 is success. The message of the last failure on the calling
 * thread is available from dn_last_error(). */
typedef enum {
  DN_OK = 0,
  DN_INVALID_ARGUMENT = 1,
  DN_NON_FINITE = 2,
  DN_CUDA_ERROR = 3,
  DN_UNSUPPORTED = 4,
  DN_OUT_OF_MEMORY = 5
} dn_status;

const char* dn_last_error(void);
/* Records a printf-style message as this thread's last error and returns `status`. */
dn_status dn_fail(dn_status status, const char* fmt, ...);

/* Threads used by the CPU kernels (OpenMP); 0 means all cores. */
void dn_set_num_threads(int n);
int dn_get_num_threads(void);

/* Instruction-set levels of the SIMD kernels that are compiled once per level (GEMM, the loss rows): on x86-64 every
 * build carries all three and runs the best one the CPU has, unless the caller picks a lower one (to test or measure
 * the AVX2 path on an AVX-512 machine). The other CPU kernels follow the build's own flags. */
#define DN_ISA_LIST(X) X(DN_ISA_SCALAR, 0, "scalar") X(DN_ISA_AVX2, 1, "avx2") X(DN_ISA_AVX512, 2, "avx512")
typedef enum { DN_ISA_LIST(DN_ENUM_ENTRY) } dn_isa;
/* 1 when `isa` is compiled in and this CPU (and OS) runs it. */
int dn_isa_supported(dn_isa isa);
/* Selects the level the dispatched kernels run from now on; DN_UNSUPPORTED when dn_isa_supported(isa) is 0. */
dn_status dn_set_isa(dn_isa isa);
/* The level in use (by default the best supported one). */
dn_isa dn_get_isa(void);

/* Number of visible CUDA devices; 0 in a CPU-only build or without a GPU. */
int dn_cuda_device_count(void);
/* Name of CUDA device `index`, or "" when unavailable. Written into buf (NUL-terminated). */
void dn_cuda_device_name(int index, char* buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
