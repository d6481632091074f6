// CUDA device discovery for the CUDA variant of the addon (dn_common.h).
#include <cuda_runtime.h>

#include <cstring>

#include "common/dn_common.h"

extern "C" int dn_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

extern "C" void dn_cuda_device_name(int index, char* buf, size_t len) {
  if (len == 0) return;
  buf[0] = '\0';
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  std::strncpy(buf, prop.name, len - 1);
  buf[len - 1] = '\0';
}
