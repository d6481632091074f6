// The logit cache's public API (formats v1 plain and v2 packed, docs/cache-format.md): the writer and its commit
// protocol, the reader, the fingerprint, maintenance operations, and the blob stores they go through.
export * from './api.js';
export { computeFingerprint, canonicalJson, idsEncodingFor } from './commit/fingerprint.js';
export { openCacheWriter, type CacheWriterOptions } from './commit/writer.js';
export { readManifest, type OpenedCache } from './commit/manifest.js';
export { openCache, type OpenCacheOptions } from './read/reader.js';
export { shardOrderFor, orderKeyFor } from './read/order.js';
export { ShardHasher } from './read/hasher.js';
export { openStore } from './backends/open.js';
export { makeDir, writeFileAtomic } from './files.js';
export type { BlobStore, BlobInfo } from './backends/blob-store.js';
export { sha256Hex } from './format/sha256.js';
export { FORMAT_VERSION } from './format/schema.js';
export { TARGET_BATCH_BYTES } from './format/shard-writer.js';
export { MIN_SAVINGS } from './format/compression.js';
export { U8_LEVELS, quantizeU8, toHalf, halfToFloatTable } from './format/encodings.js';
export { inspectCache, type InspectResult } from './operations/inspect.js';
export { verifyCache, type VerifyResult, type BadShard } from './operations/verify.js';
export { gcCache, type GcResult } from './operations/gc.js';
export { exportParquet, type ExportResult } from './operations/export.js';
export { finalizeCache } from './operations/finalize.js';
export { cacheProgress, type CacheProgress } from './operations/progress.js';
