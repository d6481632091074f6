// The blob store contract the cache is written through: keys are '/'-separated paths under the store's root, and
// put-if-absent is the only primitive the commit protocol needs. Implementations: local.ts (disk), s3.ts (S3).

export interface BlobInfo {
  key: string;
  size: number;
  modified: Date;
}

/** An unfinished multipart upload (S3 only). */
export interface StaleUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

export interface BlobStore {
  /** The root as the user wrote it, for messages. */
  readonly uri: string;
  /** The full location of one key, for messages. */
  describe(key: string): string;
  /** The object's bytes; a local store reads them into `alloc(size)` when given (a recycled buffer). */
  get(key: string, alloc?: (size: number) => Uint8Array): Promise<Uint8Array | null>;
  head(key: string): Promise<{ size: number } | null>;
  /** Writes `data` only when nothing exists at `key`; true when this call created it. */
  putIfAbsent(key: string, data: Uint8Array): Promise<boolean>;
  /** Overwriting write, for outputs that are not part of a commit protocol (exports). */
  put(key: string, data: Uint8Array): Promise<void>;
  /** Uploads a finished local file to `key` (multipart where the store has it). */
  putFile(key: string, file: string, size: number): Promise<void>;
  /** Where a key lives on local disk, when the store is local (lets writers stream straight into place). */
  localPath(key: string): string | null;
  list(prefix: string): Promise<BlobInfo[]>;
  delete(key: string): Promise<void>;
  /** Unfinished multipart uploads under `prefix` (S3 only; local stores have none). */
  staleUploads(prefix: string): Promise<StaleUpload[]>;
  abortUpload(key: string, uploadId: string): Promise<void>;
}

/** Listings come back sorted by key, whatever order the backend returns them in. */
export function byKey(a: BlobInfo, b: BlobInfo): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
