// Test fixtures for distillation: a real token dataset (Arrow) and a real logit cache written with the
// store's writer, from a synthetic teacher whose top-k favours "next token = current + 1 (mod V)".
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openTokenDataset, writeTokenDataset } from '../../../src/data/index.js';
import {
  openCacheWriter,
  openStore,
  type BlobStore,
  type CacheRows,
  type S3Options,
} from '../../../src/store/index.js';

export const TOKENIZER = { name: 'test-bytes', sha256: 'd'.repeat(64) };

export function makeDataset(
  dir: string,
  opts: {
    sequences: number;
    seqLen: number;
    vocabSize: number;
    salt?: number;
    tokenizer?: { name: string; sha256: string };
  },
): string {
  const { sequences: n, seqLen: T, vocabSize: V } = opts;
  const tokens = new Uint32Array(n * T);
  for (let s = 0; s < n; s++) {
    let x = (s * 7 + (opts.salt ?? 0)) % V;
    for (let t = 0; t < T; t++) {
      tokens[s * T + t] = x;
      x = (x + 1 + ((s + t) % 5 === 0 ? 2 : 0)) % V;
    }
  }
  const file = path.join(dir, `tokens-${opts.salt ?? 0}-${opts.tokenizer?.name ?? 'd'}.arrow`);
  writeTokenDataset(
    file,
    { seqLen: T, vocabSize: V, eotId: 0, tokenizer: opts.tokenizer ?? TOKENIZER, split: 'train' },
    tokens,
  );
  return file;
}

/** Writes a finalized cache for `datasetFile` (into a fresh folder under `dir`, or at `uri`) with `numShards` contiguous shards. */
export async function makeCache(
  dir: string,
  datasetFile: string,
  opts: { numShards: number; k?: number; vocabSize?: number; datasetSha?: string; uri?: string; s3?: S3Options },
): Promise<string> {
  const ds = await openTokenDataset(datasetFile);
  const k = opts.k ?? 4;
  const V = opts.vocabSize ?? ds.vocabSize;
  const T = ds.seqLen;
  const uri = opts.uri ?? mkdtempSync(path.join(dir, 'cache-'));
  const writer = await openCacheWriter({
    uri,
    ...(opts.s3 ? { s3: opts.s3 } : {}),
    numShards: opts.numShards,
    inputs: {
      teacher: { name: 'synthetic', sha256: 'e'.repeat(64) },
      tokenizer: ds.tokenizer,
      dataset: { sha256: opts.datasetSha ?? ds.sha256, sequences: ds.numSequences, seqLen: T },
      vocabSize: V,
      k,
      temperature: 1,
      encodings: { ids: 'uint16', logp: 'float32', compression: 'none' },
    },
  });
  const probs = [0.7, 0.1, 0.05, 0.05, 0.03, 0.02].slice(0, k);
  const tailMass = 1 - probs.reduce((a, b) => a + b, 0);
  const per = Math.ceil(ds.numSequences / opts.numShards);
  for (let shard = 0; shard < opts.numShards; shard++) {
    const rows: CacheRows[] = [];
    for (let s = shard * per; s < Math.min(ds.numSequences, (shard + 1) * per); s++) {
      const seq = ds.sequence(s);
      const r: CacheRows = {
        seq: new Uint32Array(T).fill(s),
        pos: Uint32Array.from({ length: T }, (_, t) => t),
        ids: new Uint32Array(T * k),
        logp: new Float32Array(T * k),
        tail: new Float32Array(T).fill(Math.log(tailMass)),
      };
      for (let t = 0; t < T; t++)
        for (let j = 0; j < k; j++) {
          r.ids[t * k + j] = (seq[t]! + 1 + j) % V;
          r.logp[t * k + j] = Math.log(probs[j]!);
        }
      rows.push(r);
    }
    await writer.writeShard(shard, rows);
  }
  await writer.finalize();
  return uri;
}

/** The local store of `uri`, counting every fetch of a shard file. */
export async function countingStore(uri: string): Promise<{ store: BlobStore; shardGets: Map<string, number> }> {
  const inner = await openStore(uri);
  const shardGets = new Map<string, number>();
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      // Shards come through get() so that they can be counted (a local file would be read by the hashing worker).
      if (prop === 'localPath') return () => null;
      if (prop === 'get' && typeof v === 'function') {
        return async (key: string) => {
          if (key.startsWith('shards/')) shardGets.set(key, (shardGets.get(key) ?? 0) + 1);
          return v.call(target, key);
        };
      }
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { store, shardGets };
}

export const tmpDir = (prefix: string) => mkdtempSync(path.join(os.tmpdir(), prefix));
