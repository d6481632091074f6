// Test helpers: small token datasets from the committed corpus, and a whole cache read back in (seq, pos) order.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { byteTokenizer, writeTokenDataset } from '../../../src/data/index.js';
import { openCache } from '../../../src/store/index.js';

export const FIXTURE_MODEL = path.resolve('fixtures/teacher/model.onnx');

/** N sequences of T bytes of Genesis (byte tokenizer), written as a token dataset. */
export function corpusDataset(file: string, N: number, T: number, offset = 0): Uint32Array {
  const bytes = readFileSync('fixtures/corpus/genesis.txt').subarray(offset, offset + N * T);
  const tokens = Uint32Array.from(bytes);
  const tok = byteTokenizer();
  writeTokenDataset(
    file,
    { seqLen: T, vocabSize: 257, eotId: 256, tokenizer: { name: tok.name, sha256: tok.sha256 }, split: 'train' },
    tokens,
  );
  return tokens;
}

export interface CacheDump {
  rows: number;
  k: number;
  seq: number[];
  pos: number[];
  ids: number[];
  logp: number[];
  tail: number[];
  samples: number[];
  counts: number[];
}

export async function dumpCache(uri: string): Promise<CacheDump> {
  const r = await openCache(uri);
  const k = r.manifest.inputs.k;
  const S = r.manifest.inputs.samples ?? 0;
  const all: Array<{
    seq: number;
    pos: number;
    ids: number[];
    logp: number[];
    tail: number;
    samples: number[];
    counts: number[];
  }> = [];
  for await (const b of r.batches({ seed: 0, epoch: 0 })) {
    for (let i = 0; i < b.seq.length; i++) {
      all.push({
        seq: b.seq[i]!,
        pos: b.pos[i]!,
        ids: Array.from(b.ids.subarray(i * k, (i + 1) * k)),
        logp: Array.from(b.logp.subarray(i * k, (i + 1) * k)),
        tail: b.tail[i]!,
        samples: b.samples ? Array.from(b.samples.subarray(i * S, (i + 1) * S)) : [],
        counts: b.sampleCounts ? Array.from(b.sampleCounts.subarray(i * S, (i + 1) * S)) : [],
      });
    }
  }
  await r.close();
  all.sort((a, b) => a.seq - b.seq || a.pos - b.pos);
  return {
    rows: all.length,
    k,
    seq: all.map((x) => x.seq),
    pos: all.map((x) => x.pos),
    ids: all.flatMap((x) => x.ids),
    logp: all.flatMap((x) => x.logp),
    tail: all.map((x) => x.tail),
    samples: all.flatMap((x) => x.samples),
    counts: all.flatMap((x) => x.counts),
  };
}
