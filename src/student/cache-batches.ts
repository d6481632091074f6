// Batches joined with the teacher: B whole sequences from the cache reader's deterministic order
// (seed, epoch, row position), tokens/labels from the token dataset, teacher ids/logp [B×T×k] and
// tail [B×T] from the cache rows of the same positions. The cursor resumes at the next unread sequence.
import { DistillError } from '../core/errors.js';
import { checkCacheMatchesDataset } from '../data/cache-match.js';
import { assembleTokens, type TokenDatasetLike } from '../data/sequences.js';
import type { CacheReader, CacheSequence, S3Options } from '../store/api.js';
import { openCache, type BlobStore } from '../store/index.js';
import type { CacheSourceInfo } from './ports.js';
import type { Batch, BatchSource, DataCursor } from './data.js';

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

export function cacheBatches(
  reader: CacheReader,
  dataset: TokenDatasetLike,
  batchSize: number,
  start: DataCursor,
): BatchSource {
  const { seed } = start;
  let { epoch, position } = start;
  const k = reader.manifest.inputs.k;
  const S = reader.manifest.inputs.samples ?? 0;
  const T = dataset.seqLen;
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
  let it: AsyncIterator<CacheSequence> | undefined;
  // Each sequence is copied into the batch before the next is requested, so the reader may recycle its buffers.
  const open = () => reader.sequences({ seed, epoch, position, reuse: true })[Symbol.asyncIterator]();

  const nextSequence = async (): Promise<CacheSequence> => {
    for (let attempt = 0; attempt < 2; attempt++) {
      it ??= open();
      const r = await it.next();
      if (!r.done) return r.value;
      epoch += 1;
      position = 0;
      it = undefined;
    }
    throw new DistillError(
      'E_CACHE_INCOMPLETE',
      `the logit cache ${reader.uri} yielded no sequence for a whole epoch`,
      { subject: reader.uri },
    );
  };

  return {
    cursor: () => ({ seed, epoch, position, source: { manifestSha: reader.manifestSha } }),
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
        const s = await nextSequence();
        checkSequence(s, T, dataset, reader.uri);
        copySequence(s, b, T, k, S, teacher);
        seqs.push(s.seq);
        position = s.position + T;
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
      await it?.return?.();
      await reader.close();
    },
  };
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
  opts: { store?: BlobStore; s3?: S3Options } = {},
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
  return Object.assign(cacheBatches(reader, dataset, batchSize, cursor), { info });
}
