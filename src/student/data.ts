// Training batches: B whole sequences of T tokens → tokens [B×T] (int32), next-token labels [B×T]
// (−100 at each sequence's last position), and, with a logit cache, the teacher top-k of the same
// positions (ids/logp [B×T×k], tail [B×T]). Order is a pure function of (seed, epoch, position).
import { DistillError } from '../core/errors.js';
import { IGNORE_INDEX } from '../core/types.js';
import { mulberry32 } from '../core/random.js';

/** What the trainer needs of a token dataset (src/data's `openTokenDataset` result satisfies it). */
export interface TokenDatasetLike {
  sha256: string;
  seqLen: number;
  numSequences: number;
  vocabSize: number;
  tokenizer: { name: string; sha256: string };
  sequence(i: number): ArrayLike<number>;
}

export interface TeacherBatch {
  k: number;
  ids: Uint32Array;
  logp: Float32Array;
  tail: Float32Array;
  /** Teacher samples for sampled distillation: ids and counts n × k. */
  samples?: { ids: Uint32Array; counts: Uint32Array | Float32Array; k: number };
}

export interface Batch {
  batch: number;
  seqLen: number;
  /** Dataset sequence index of each row of the batch. */
  seqs: number[];
  tokens: Int32Array;
  labels: Int32Array;
  teacher?: TeacherBatch;
}

/** Where the next batch starts; saved in trainer-state.json so a resumed run reads the same batches. */
export interface DataCursor {
  seed: number;
  epoch: number;
  position: number;
  /** Extra state a cache reader needs to resume (manifest hash etc.), opaque here. */
  source?: Record<string, unknown>;
}

export interface BatchSource {
  next(): Promise<Batch>;
  /** The cursor of the next batch not yet returned. */
  cursor(): DataCursor;
  close?(): Promise<void>;
}

/** The epoch's visiting order of n sequences: a Fisher–Yates shuffle keyed by (seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rnd = mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** Tokens and labels of B sequences, each checked against the vocabulary. */
export function assembleTokens(dataset: TokenDatasetLike, seqs: number[]): { tokens: Int32Array; labels: Int32Array } {
  const T = dataset.seqLen;
  const tokens = new Int32Array(seqs.length * T);
  const labels = new Int32Array(seqs.length * T);
  seqs.forEach((s, b) => {
    const row = dataset.sequence(s);
    if (row.length !== T)
      throw new DistillError('E_DATA', `sequence ${s} has the wrong length`, {
        expected: String(T),
        found: String(row.length),
      });
    for (let t = 0; t < T; t++) {
      const id = row[t]!;
      if (!(id >= 0 && id < dataset.vocabSize)) {
        throw new DistillError('E_DATA', `sequence ${s} holds a token id outside the vocabulary`, {
          expected: `0 ≤ id < ${dataset.vocabSize}`,
          found: `${id} at position ${t}`,
        });
      }
      tokens[b * T + t] = id;
      labels[b * T + t] = t + 1 < T ? row[t + 1]! : IGNORE_INDEX;
    }
  });
  return { tokens, labels };
}

/** CE-only batches straight from the token dataset, epoch after epoch. */
export function datasetBatches(dataset: TokenDatasetLike, batchSize: number, start: DataCursor): BatchSource {
  let { epoch, position } = start;
  const { seed } = start;
  let order = epochOrder(dataset.numSequences, seed, epoch);
  return {
    cursor: () => ({ seed, epoch, position }),
    async next() {
      const seqs: number[] = [];
      while (seqs.length < batchSize) {
        if (position >= order.length) {
          epoch += 1;
          position = 0;
          order = epochOrder(dataset.numSequences, seed, epoch);
        }
        seqs.push(order[position++]!);
      }
      return { batch: batchSize, seqLen: dataset.seqLen, seqs, ...assembleTokens(dataset, seqs) };
    },
  };
}
