// Public face of the native layer: the loader and device queries.
export { loadNative, nativeFn, nativeEnum, cudaAvailable, packageRoot } from './loader.js';
export type { NativeAddon, NativeInfo, LoadedNative, NativeEnums, NativeEnumGroup } from './loader.js';
