// Public face of the native layer: the loader and device queries.
export { loadNative, nativeFn, cudaAvailable, packageRoot } from './loader.js';
export type { NativeAddon, NativeInfo, LoadedNative } from './loader.js';
