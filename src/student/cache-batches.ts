// Batches joined with the teacher: B whole sequences from the cache reader's deterministic order
// (seed, epoch, row position), tokens/labels from the token dataset, teacher ids/logp [B×T×k] and
// tail [B×T] from the cache rows of the same positions. The cursor resumes at the next unread sequence.
// A masked cache holds only the positions the dataset's loss mask scores: they are placed at their positions,
// the others padded (ids 0, log-probabilities −inf) where the labels are −100 and no loss reads them.
import { DistillError } from '../core/errors.js';
import { checkCacheMatchesDataset } from '../data/cache-match.js';
import { assembleTokens, type TokenDatasetLike } from '../data/sequences.js';
import type { CacheReader, CacheSequence, S3Options } from '../store/api.js';
import { openCache, type BlobStore } from '../store/index.js';
import type { CacheSourceInfo } from './ports.js';
import type { Batch, BatchSource, DataCursor } from './data.js';
import { orderedSequences, shuffledSequences, type SequenceStream } from './shuffle.js';

/** The teacher arrays of one batch: ids/logp [B×T×k], tail [B×T], and samples/counts [B×T×S] when the cache has them. */
interface TeacherArrays {
  ids: Uint32Array;
  logp: Float32Array;
  tail: Float32Array;
  samples?: { ids: Uint32Array; counts: Float32Array };
}

/** Refuses a cached sequence that is not T rows at positions 0..T−1 of a sequence the dataset holds. */
function checkSequence(s: CacheSequence, T: number, dataset: TokenDatasetLike, uri: string): void {
  const rows = s.rows;
  if (rows.pos.length !== T || s.seq >= dataset.numSequences) {
    throw new DistillError(
      'E_CACHE_FORMAT',
      `shard ${s.shard} of ${uri}: sequence ${s.seq} does not fit the token dataset`,
      {
        expected: `${T} rows of a sequence < ${dataset.numSequences}`,
        found: `${rows.pos.length} rows`,
        subject: uri,
      },
    );
  }
  rows.pos.forEach((p, t) => {
    if (p !== t)
      throw new DistillError(
        'E_CACHE_FORMAT',
        `shard ${s.shard} of ${uri}: rows of sequence ${s.seq} are out of order`,
        {
          expected: `pos ${t}`,
          found: `pos ${p}`,
          subject: uri,
        },
      );
  });
}

/** Copies one sequence's T cached rows into row b of the batch's teacher arrays. */
function copySequence(s: CacheSequence, b: number, T: number, k: number, S: number, out: TeacherArrays): void {
  const rows = s.rows;
  out.ids.set(rows.ids.subarray(0, T * k), b * T * k);
  out.logp.set(rows.logp.subarray(0, T * k), b * T * k);
  out.tail.set(rows.tail.subarray(0, T), b * T);
  if (out.samples && rows.samples && rows.sampleCounts) {
    out.samples.ids.set(rows.samples.subarray(0, T * S), b * T * S);
    out.samples.counts.set(rows.sampleCounts.subarray(0, T * S), b * T * S);
  }
}

/** Reading order options: `shuffleBlockRows` turns on block shuffling across shards (src/student/shuffle.ts). */
export interface CacheOrderOptions {
  shuffleBlockRows?: number;
}

/** The sequence stream a cursor continues; a cursor from a run with other order settings is refused. */
function sequenceStream(reader: CacheReader, start: DataCursor, opts: CacheOrderOptions): SequenceStream {
  const had = start.source?.shuffleBlockRows;
  const want = opts.shuffleBlockRows;
  const resumed = start.source?.manifestSha !== undefined;
  if (resumed && had !== want)
    throw new DistillError('E_CHECKPOINT', 'cannot resume: the cache reading order differs from the interrupted run', {
      expected: had === undefined ? 'no block shuffling' : `shuffleBlockRows ${String(had)}`,
      found: want === undefined ? 'no block shuffling' : `shuffleBlockRows ${want}`,
      field: 'shuffleBlockRows',
      subject: reader.uri,
    });
  if (want === undefined) return orderedSequences(reader, start.seed, start);
  if (!Number.isInteger(want) || want < 1)
    throw new DistillError('E_CONFIG', '`shuffleBlockRows` must be a positive integer', {
      found: String(want),
      field: 'shuffleBlockRows',
    });
  const taken = typeof start.source?.blockTaken === 'number' ? start.source.blockTaken : 0;
  return shuffledSequences(reader, start.seed, { ...start, shuffle: { blockRows: want, taken } });
}

export function cacheBatches(
  reader: CacheReader,
  dataset: TokenDatasetLike,
  batchSize: number,
  start: DataCursor,
  order: CacheOrderOptions = {},
): BatchSource {
  const { seed } = start;
  const k = reader.manifest.inputs.k;
  const S = reader.manifest.inputs.samples ?? 0;
  const T = dataset.seqLen;
  const masked = reader.manifest.inputs.dataset.scoredPositions !== undefined;
  if (start.source?.manifestSha !== undefined && start.source.manifestSha !== reader.manifestSha) {
    throw new DistillError('E_CHECKPOINT', 'cannot resume: the logit cache changed since the checkpoint', {
      expected: `manifest sha256 ${String(start.source.manifestSha)}`,
      found: reader.manifestSha,
      subject: reader.uri,
    });
  }
  if (reader.rows === 0)
    throw new DistillError('E_CACHE_INCOMPLETE', `the logit cache ${reader.uri} holds no rows`, {
      subject: reader.uri,
    });
  // Each sequence is copied into the batch before the next is requested, so the reader may recycle its buffers.
  const stream = sequenceStream(reader, start, order);

  return {
    cursor: () => {
      const c = stream.cursor();
      return {
        seed,
        epoch: c.epoch,
        position: c.position,
        source: {
          manifestSha: reader.manifestSha,
          ...(c.shuffle ? { shuffleBlockRows: c.shuffle.blockRows, blockTaken: c.shuffle.taken } : {}),
        },
      };
    },
    async next(): Promise<Batch> {
      const seqs: number[] = [];
      const teacher: TeacherArrays = {
        ids: new Uint32Array(batchSize * T * k),
        logp: new Float32Array(batchSize * T * k),
        tail: new Float32Array(batchSize * T),
        ...(S > 0
          ? { samples: { ids: new Uint32Array(batchSize * T * S), counts: new Float32Array(batchSize * T * S) } }
          : {}),
      };
      for (let b = 0; b < batchSize; b++) {
        const s = await stream.next();
        if (masked) placeMaskedRows(s, dataset, reader.uri, k, S, b, teacher);
        else {
          checkSequence(s, T, dataset, reader.uri);
          copySequence(s, b, T, k, S, teacher);
        }
        seqs.push(s.seq);
      }
      const { samples, ...top } = teacher;
      return {
        batch: batchSize,
        seqLen: T,
        seqs,
        ...assembleTokens(dataset, seqs),
        teacher: { k, ...top, ...(samples ? { samples: { ...samples, k: S } } : {}) },
      };
    },
    async close() {
      await stream.close();
      await reader.close();
    },
  };
}

/**
 * Places a masked cache sequence's rows into batch row b at their positions, after checking that they are
 * exactly the positions the dataset's mask scores; the other positions are padding (ids 0, logp −inf).
 */
function placeMaskedRows(
  s: CacheSequence,
  dataset: TokenDatasetLike,
  uri: string,
  k: number,
  S: number,
  b: number,
  out: TeacherArrays,
): void {
  const T = dataset.seqLen;
  const mask = s.seq < dataset.numSequences ? dataset.sequenceMask?.(s.seq) : undefined;
  const want: number[] = [];
  for (let t = 0; t < T; t++) if (mask?.[t] === 1) want.push(t);
  const got = Array.from(s.rows.pos);
  if (!mask || got.length !== want.length || got.some((p, i) => p !== want[i]))
    throw new DistillError(
      'E_CACHE_FORMAT',
      `shard ${s.shard} of ${uri}: sequence ${s.seq} does not fit the token dataset's loss mask`,
      {
        expected: mask
          ? `rows at positions ${want.join(',') || 'none'}`
          : `a sequence < ${dataset.numSequences} with a loss mask`,
        found: `rows at positions ${got.join(',')}`,
        subject: uri,
      },
    );
  out.ids.fill(0, b * T * k, (b + 1) * T * k);
  out.logp.fill(-Infinity, b * T * k, (b + 1) * T * k);
  out.tail.fill(0, b * T, (b + 1) * T);
  out.samples?.ids.fill(0, b * T * S, (b + 1) * T * S);
  out.samples?.counts.fill(0, b * T * S, (b + 1) * T * S);
  got.forEach((p, i) => {
    const at = b * T + p;
    out.ids.set(s.rows.ids.subarray(i * k, (i + 1) * k), at * k);
    out.logp.set(s.rows.logp.subarray(i * k, (i + 1) * k), at * k);
    out.tail[at] = s.rows.tail[i] ?? 0;
    if (out.samples && s.rows.samples && s.rows.sampleCounts) {
      out.samples.ids.set(s.rows.samples.subarray(i * S, (i + 1) * S), at * S);
      out.samples.counts.set(s.rows.sampleCounts.subarray(i * S, (i + 1) * S), at * S);
    }
  });
}

/**
 * Opens the cache for a dataset: the store refuses a different tokenizer or dataset hash (naming which),
 * then the layout is checked against the dataset; returns the batch source with what the trainer reports.
 */
export async function openCacheBatches(
  uri: string,
  dataset: TokenDatasetLike & { path?: string },
  batchSize: number,
  cursor: DataCursor,
  opts: { store?: BlobStore; s3?: S3Options } & CacheOrderOptions = {},
): Promise<BatchSource & { info: CacheSourceInfo }> {
  const reader = await openCache(uri, {
    expect: { tokenizerSha256: dataset.tokenizer.sha256, datasetSha256: dataset.sha256 },
    ...opts,
  });
  try {
    checkCacheMatchesDataset(reader.manifest, dataset, uri);
  } catch (err) {
    await reader.close();
    throw err;
  }
  const inp = reader.manifest.inputs;
  const info: CacheSourceInfo = {
    uri,
    fingerprint: reader.manifest.fingerprint,
    vocabSize: inp.vocabSize,
    k: inp.k,
    shardReads: () => reader.shardReads(),
  };
  const order = opts.shuffleBlockRows !== undefined ? { shuffleBlockRows: opts.shuffleBlockRows } : {};
  try {
    return Object.assign(cacheBatches(reader, dataset, batchSize, cursor, order), { info });
  } catch (err) {
    await reader.close();
    throw err;
  }
}
