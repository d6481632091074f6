// The logit cache's contracts (format v1), shared by the teacher runner (writer side) and the
// student trainer (reader side). Rows are token positions; a shard holds whole sequences, rows
// ordered by (seq, pos), every position 0..T-1 of each sequence (pos predicts token pos+1).
import type { ProgressFn } from '../core/types.js';

export type IdsEncoding = 'uint16' | 'uint32';
export type LogpEncoding = 'float32' | 'float16' | 'uint8';
export type BodyCompression = 'none' | 'zstd' | 'lz4';

/** What made the cache; every field here feeds the fingerprint. */
export interface CacheInputs {
  teacher: { name: string; sha256: string };
  tokenizer: { name: string; sha256: string };
  dataset: { sha256: string; sequences: number; seqLen: number };
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
export type ShardOutcome = { status: 'committed'; record: CommitRecord } | { status: 'lost-race'; record: CommitRecord };

export interface ExpectedInputs {
  tokenizerSha256?: string;
  datasetSha256?: string;
  teacherSha256?: string;
}
