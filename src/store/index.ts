// The logit cache's public API (format v1): writer, reader, fingerprint, maintenance, blob stores.
export * from './api.js';
export { computeFingerprint, canonicalJson, idsEncodingFor } from './fingerprint.js';
export { openCacheWriter, finalizeCache, TARGET_BATCH_BYTES } from './writer.js';
export { openCache, readManifest, shardOrderFor, orderKeyFor } from './reader.js';
export { openStore, sha256Hex, type BlobStore, type BlobInfo } from './blob.js';
export { FORMAT_VERSION, U8_LEVELS, quantizeU8, toHalf, halfToFloatTable } from './encode.js';
export {
  inspectCache,
  verifyCache,
  gcCache,
  exportParquet,
  type InspectResult,
  type VerifyResult,
  type GcResult,
  type ExportResult,
  type BadShard,
} from './admin.js';
