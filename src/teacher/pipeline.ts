// Per-shard pipeline: the backend scores the next groups of sequences while the main thread turns finished
// ones into cache rows (seq, pos, ids, logp, tail, samples) that the cache writer encodes, hashes and uploads.
// With a loss mask, only the positions it scores become rows.
import type { CacheRows } from '../store/api.js';
import type { ScoredPart, TeacherBackend } from './backends/index.js';

/**
 * Positions the backend returns per call (several session runs or requests when batches are small).
 * Each call costs the main thread a wake-up, a callback and, for the ONNX thread, a deserialization: on the
 * 2-core machine one message per batch of 512 positions took 0.45–0.65 µs of main-thread CPU per position,
 * one per 4096 positions 0.15–0.2.
 */
export const MESSAGE_POSITIONS = 4096;

export interface ShardSource {
  tokens: Uint32Array;
  seqLen: number;
  /** N × T, 1 where the position is scored: the other positions get no cache row. */
  lossMask?: Uint8Array;
}

/** Collapses S draws per position into distinct ids (most frequent first, then by id) with counts; unused slots have count 0. */
export function countSamples(draws: Int32Array, n: number, S: number): { samples: Uint32Array; counts: Uint16Array } {
  const samples = new Uint32Array(n * S);
  const counts = new Uint16Array(n * S);
  const m = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    m.clear();
    for (const d of draws.subarray(i * S, (i + 1) * S)) m.set(d, (m.get(d) ?? 0) + 1);
    const entries = [...m.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    const top = entries[0]?.[0] ?? 0;
    for (let j = 0; j < S; j++) {
      const e = entries[j];
      samples[i * S + j] = e ? e[0] : top;
      counts[i * S + j] = e ? e[1] : 0;
    }
  }
  return { samples, counts };
}

/** pos = 0..T−1 for each of nSeq sequences; the same for every batch of that size, so one array serves them all. */
const positions = new Map<string, Uint32Array>();
function posColumn(nSeq: number, T: number): Uint32Array {
  const key = `${nSeq}x${T}`;
  let pos = positions.get(key);
  if (!pos) {
    if (positions.size > 16) positions.clear();
    pos = new Uint32Array(nSeq * T);
    for (let i = 0; i < pos.length; i++) pos[i] = i % T;
    positions.set(key, pos);
  }
  return pos;
}

/** One part's rows: the backend's output arrays as they came (no copies), seq/pos beside them. */
export function toRows(r: ScoredPart, firstSeq: number, T: number, k: number, S: number): CacheRows {
  const nSeq = r.nSeq;
  const n = nSeq * T;
  const seq = new Uint32Array(n);
  for (let s = 0; s < nSeq; s++) seq.fill(firstSeq + s, s * T, (s + 1) * T);
  const rows: CacheRows = {
    seq,
    pos: posColumn(nSeq, T),
    ids: new Uint32Array(r.ids.buffer, r.ids.byteOffset, n * k),
    logp: r.logp,
    tail: r.tail,
  };
  if (S > 0 && r.samples) {
    const c = countSamples(r.samples, n, S);
    rows.samples = c.samples;
    rows.sampleCounts = c.counts;
  }
  return rows;
}

/** The rows whose `keep` flag is 1, copied (the backend's arrays hold every position). */
export function keepRows(rows: CacheRows, keep: Uint8Array, k: number, S: number): CacheRows {
  let n = 0;
  for (const f of keep) n += f;
  const out: CacheRows = {
    seq: new Uint32Array(n),
    pos: new Uint32Array(n),
    ids: new Uint32Array(n * k),
    logp: new Float32Array(n * k),
    tail: new Float32Array(n),
  };
  if (rows.samples) out.samples = new Uint32Array(n * S);
  if (rows.sampleCounts) out.sampleCounts = new Uint16Array(n * S);
  let j = 0;
  keep.forEach((f, i) => {
    if (f !== 1) return;
    out.seq[j] = rows.seq[i] ?? 0;
    out.pos[j] = rows.pos[i] ?? 0;
    out.ids.set(rows.ids.subarray(i * k, (i + 1) * k), j * k);
    out.logp.set(rows.logp.subarray(i * k, (i + 1) * k), j * k);
    out.tail[j] = rows.tail[i] ?? 0;
    out.samples?.set(rows.samples?.subarray(i * S, (i + 1) * S) ?? [], j * S);
    out.sampleCounts?.set(rows.sampleCounts?.subarray(i * S, (i + 1) * S) ?? [], j * S);
    j++;
  });
  return out;
}

export interface ShardRowsOptions {
  backend: TeacherBackend;
  source: ShardSource;
  start: number;
  end: number;
  /** Sequences per model call (session run or request). */
  batchSize: number;
  k: number;
  samples: number;
  /** Groups (whole batches, MESSAGE_POSITIONS positions or one batch) in flight ahead of the consumer. */
  depth?: number;
  /** Called with each batch's V before its rows are yielded (lets the caller refuse a mismatch). */
  onVocab?: (v: number) => void;
  onRows?: (n: number) => void;
}

/** Groups kept in flight: two, or as many as the backend's queue asks for (a fleet of servers). */
export function pipelineDepth(queueSequences: number, groupSequences: number): number {
  return Math.max(2, Math.ceil(queueSequences / groupSequences));
}

/** Sequences per call to the backend: whole batches, about MESSAGE_POSITIONS positions. */
export const groupSequences = (batchSize: number, T: number): number =>
  batchSize * Math.max(1, Math.floor(MESSAGE_POSITIONS / (batchSize * T)));

/** Yields the shard's rows batch by batch, keeping `depth` groups of scoring ahead. */
export async function* shardRows(o: ShardRowsOptions): AsyncGenerator<CacheRows> {
  const T = o.source.seqLen;
  const depth = o.depth ?? 2;
  const group = groupSequences(o.batchSize, T);
  const queue: Array<{ p: Promise<ScoredPart[]>; first: number }> = [];
  let next = o.start;
  const launch = () => {
    if (next >= o.end) return;
    const n = Math.min(group, o.end - next);
    const p = o.backend.score({
      tokens: o.source.tokens.subarray(next * T, (next + n) * T),
      nSeq: n,
      seqLen: T,
      firstSeq: next,
      batchSize: o.batchSize,
    });
    p.catch(() => undefined); // observed below; avoids an unhandled rejection while queued
    queue.push({ p, first: next });
    next += n;
  };
  for (let i = 0; i < depth; i++) launch();
  for (let g = queue.shift(); g; g = queue.shift()) {
    const parts = await g.p;
    launch();
    let first = g.first;
    for (const r of parts) {
      o.onVocab?.(r.vocab);
      const rows = toRows(r, first, T, o.k, o.samples);
      const mask = o.source.lossMask?.subarray(first * T, (first + r.nSeq) * T);
      yield mask ? keepRows(rows, mask, o.k, o.samples) : rows;
      first += r.nSeq;
      o.onRows?.(r.nSeq * T);
    }
  }
}
