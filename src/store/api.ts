// The logit cache's contracts (formats v1 plain and v2 packed, docs/cache-format.md), shared by the teacher runner
// (writer side) and the student trainer (reader side). Rows are token positions; a shard holds whole sequences, rows
// ordered by (seq, pos), every position 0..T-1 of each sequence (pos predicts token pos+1) — or, for a dataset with
// a loss mask, exactly the positions its mask scores.

/** 'packed' (format v2) goes with logp 'packed': ids and levels share one bitstream per row. */
export type IdsEncoding = 'uint16' | 'uint32' | 'packed';
export type LogpEncoding = 'float32' | 'float16' | 'uint8' | 'packed';
export type BodyCompression = 'none' | 'zstd' | 'lz4';

/** What made the cache; every field here feeds the fingerprint. */
export interface CacheInputs {
  teacher: { name: string; sha256: string };
  tokenizer: { name: string; sha256: string };
  /** `scoredPositions` only for a dataset with a loss mask: the cache then holds just those positions. */
  dataset: { sha256: string; sequences: number; seqLen: number; scoredPositions?: number };
  vocabSize: number;
  k: number;
  temperature: number;
  encodings: { ids: IdsEncoding; logp: LogpEncoding; compression: BodyCompression };
  /** Teacher samples per position for sampled distillation; 0 or absent when none. */
  samples?: number;
}

/** A batch of rows: n positions, ids/logp n × k row-major, samples n × s when present. */
export interface CacheRows {
  seq: Uint32Array;
  pos: Uint32Array;
  ids: Uint32Array;
  logp: Float32Array;
  tail: Float32Array;
  samples?: Uint32Array;
  sampleCounts?: Uint16Array;
}

export interface CommitRecord {
  shard: number;
  key: string;
  bytes: number;
  rows: number;
  sha256: string;
  schemaHash: string;
  fingerprint: string;
  attempt: string;
  writer: string;
}

/** The result of offering one shard: ours won, or another writer had already committed it. */
export type ShardOutcome =
  { status: 'committed'; record: CommitRecord } | { status: 'lost-race'; record: CommitRecord };

export interface ExpectedInputs {
  tokenizerSha256?: string;
  datasetSha256?: string;
  teacherSha256?: string;
}

/** Settings for s3:// stores; anything unset falls back to the standard AWS environment variables. */
export interface S3Options {
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  /** 'WHEN_REQUIRED' suits S3-compatible servers that reject the newer default checksums. */
  checksums?: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Attempts per request on throttling and dropped connections (default 6). */
  maxAttempts?: number;
  /** Shards at least this large go up as multipart uploads (default 16 MiB; parts are max(5 MiB, this)). */
  multipartBytes?: number;
}

/** Quantization and layout facts a reader needs, recorded in the manifest and in each shard's schema metadata. */
export interface CacheLayout {
  formatVersion: number;
  vocabSize: number;
  k: number;
  seqLen: number;
  samples: number;
  encodings: { ids: IdsEncoding; logp: LogpEncoding; compression: BodyCompression };
  /** True when rows are only the positions a loss mask scores (sequences have 0…T rows, pos increasing). */
  masked?: boolean;
}

/** manifest.json: written last, once every shard has a commit; readers trust only it. */
export interface Manifest {
  formatVersion: number;
  fingerprint: string;
  createdAt: string;
  inputs: CacheInputs;
  numShards: number;
  rows: number;
  bytes: number;
  shards: CommitRecord[];
}

export interface CacheWriter {
  readonly uri: string;
  readonly fingerprint: string;
  committedShards(): Promise<Set<number>>;
  writeShard(index: number, rows: AsyncIterable<CacheRows> | Iterable<CacheRows>): Promise<ShardOutcome>;
  finalize(): Promise<Manifest>;
}

/** Where to start reading: the resume state is {manifestSha, seed, epoch, position}. */
export interface ReadOptions {
  seed: number;
  epoch: number;
  /** Rows of this epoch already consumed (0 = start). */
  position?: number;
  /** Shards fetched and verified ahead of the consumer (default 2). */
  prefetch?: number;
  /** Upper bound on rows per yielded batch (default 8192); batches never cross a shard. */
  maxRows?: number;
  /** Stops the read early. */
  signal?: AbortSignal;
  /**
   * Decode into two recycled buffers instead of fresh arrays: a yielded batch's or sequence's arrays stay valid
   * only until the next one is requested. For consumers that copy what they need at once (the trainer and the
   * evaluator do); it spares allocating and faulting in n·k·8 bytes per record batch.
   */
  reuse?: boolean;
}

/** One whole sequence: its T rows in pos order, and the epoch position of its first row. */
export interface CacheSequence {
  seq: number;
  position: number;
  shard: number;
  rows: CacheRows;
}

export type PositionedRows = CacheRows & { position: number; shard: number };

export interface ResumeState {
  manifestSha: string;
  seed: number;
  epoch: number;
  position: number;
}

export interface CacheReader {
  readonly uri: string;
  readonly manifest: Manifest;
  /** SHA-256 of manifest.json's bytes: part of the resume state. */
  readonly manifestSha: string;
  readonly rows: number;
  /** The epoch's shard visiting order (a pure function of manifestSha, seed, epoch). */
  shardOrder(seed: number, epoch: number): number[];
  batches(opts: ReadOptions): AsyncIterable<PositionedRows>;
  sequences(opts: ReadOptions): AsyncIterable<CacheSequence>;
  /** Throws E_USAGE unless `state` belongs to this manifest; returns the read options that continue it. */
  resume(state: ResumeState, extra?: Omit<ReadOptions, 'seed' | 'epoch' | 'position'>): ReadOptions;
  /** Shard fetches so far (each verified shard counts once). */
  shardReads(): number;
  /** Stops reads in progress at their next shard and ends the hashing thread the reader started, if any. */
  close(): Promise<void>;
}
