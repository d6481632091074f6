// Public face of the native layer: the loader and device queries.
export {
  loadNative,
  nativeFn,
  nativeEnum,
  nativeOptionsFromEnv,
  cudaAvailable,
  packageRoot,
  OPENMP_SPIN_COUNT,
  SIMD_LEVELS,
  useSimdLevel,
} from './loader.js';
export type {
  NativeAddon,
  NativeInfo,
  LoadedNative,
  NativeEnums,
  NativeEnumGroup,
  NativeOptions,
  OpenMpStatus,
  CudaLossKernel,
  SimdLevel,
} from './loader.js';
