// `distill cache inspect`: a cache's inputs, layout and size, from its manifest.
import type { S3Options } from '../api.js';
import { readManifest } from '../commit/manifest.js';

export interface InspectResult {
  uri: string;
  formatVersion: number;
  fingerprint: string;
  teacher: { name: string; sha256: string };
  tokenizer: { name: string; sha256: string };
  dataset: { sha256: string; sequences: number; seqLen: number };
  vocabSize: number;
  k: number;
  temperature: number;
  samples: number;
  encodings: { ids: string; logp: string; compression: string };
  shards: number;
  rows: number;
  bytes: number;
  bytesPerPosition: number;
  createdAt: string;
}

export async function inspectCache(uri: string, opts: { s3?: S3Options } = {}): Promise<InspectResult> {
  const { manifest: m } = await readManifest(uri, opts);
  return {
    uri,
    formatVersion: m.formatVersion,
    fingerprint: m.fingerprint,
    teacher: m.inputs.teacher,
    tokenizer: m.inputs.tokenizer,
    dataset: m.inputs.dataset,
    vocabSize: m.inputs.vocabSize,
    k: m.inputs.k,
    temperature: m.inputs.temperature,
    samples: m.inputs.samples ?? 0,
    encodings: m.inputs.encodings,
    shards: m.numShards,
    rows: m.rows,
    bytes: m.bytes,
    bytesPerPosition: m.rows ? m.bytes / m.rows : 0,
    createdAt: m.createdAt,
  };
}
