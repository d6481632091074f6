// Training batches: B whole sequences of T tokens → tokens [B×T] (int32), next-token labels [B×T]
// (−100 at each sequence's last position), and, with a logit cache, the teacher top-k of the same
// positions (ids/logp [B×T×k], tail [B×T]). Order is a pure function of (seed, epoch, position).
import { at } from '../core/arrays.js';
import { mulberry32 } from '../core/random.js';
import { assembleTokens, type TokenDatasetLike } from '../data/sequences.js';
import type { DataCursor } from '../engine/trainer-state.js';

/** Where the next batch starts; saved in trainer-state.json so a resumed run reads the same batches. */
export type { DataCursor };

export interface TeacherBatch {
  k: number;
  ids: Uint32Array;
  logp: Float32Array;
  tail: Float32Array;
  /** Teacher samples for sampled distillation: ids and counts n × k. */
  samples?: { ids: Uint32Array; counts: Uint32Array | Float32Array; k: number };
  /** On-policy token-rkl: the live teacher's log-prob of each position's next token [B×T] (NaN at the last). */
  target?: Float32Array;
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
    const t = at(order, i);
    order[i] = at(order, j);
    order[j] = t;
  }
  return order;
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
        seqs.push(at(order, position++));
      }
      return { batch: batchSize, seqLen: dataset.seqLen, seqs, ...assembleTokens(dataset, seqs) };
    },
  };
}
