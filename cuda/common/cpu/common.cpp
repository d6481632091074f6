// Status reporting and thread control shared by every CPU kernel (the C ABI in dn_common.h).
#include "common/dn_common.h"

#include <omp.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

static thread_local char g_last_error[1024] = "";

extern "C" const char* dn_last_error(void) { return g_last_error; }

extern "C" dn_status dn_fail(dn_status status, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(g_last_error, sizeof(g_last_error), fmt, args);
  va_end(args);
  return status;
}

extern "C" void dn_set_num_threads(int n) {
  omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
}

extern "C" int dn_get_num_threads(void) { return omp_get_max_threads(); }

#ifndef DISTILLERY_WITH_CUDA
extern "C" int dn_cuda_device_count(void) { return 0; }
extern "C" void dn_cuda_device_name(int, char* buf, size_t len) {
  if (len > 0) buf[0] = '\0';
}
#endif
