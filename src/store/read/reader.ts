// The cache reader: trusts only manifest.json; yields rows in an order that is a pure function of
// (content key, seed, epoch) — shards shuffled (order.ts), rows within a shard in (seq, pos) order — with
// shard-parallel prefetch, every shard verified before its first row, and exact resume by position.
import { DistillError, invariant } from '../../core/errors.js';
import type {
  CacheLayout,
  CacheReader,
  CacheRows,
  CacheSequence,
  CommitRecord,
  ExpectedInputs,
  Manifest,
  PositionedRows,
  ReadOptions,
  ResumeState,
  S3Options,
} from '../api.js';
import type { BlobStore } from '../backends/blob-store.js';
import { MANIFEST_KEY } from '../commit/keys.js';
import { checkExpected, readManifest, type OpenedCache } from '../commit/manifest.js';
import { decodeBatch, type DecodeTarget } from '../format/columns.js';
import { allocRows, copyRows, sliceRows } from '../format/rows.js';
import { ShardHasher } from './hasher.js';
import { orderKeyFor, shardOrderFor } from './order.js';
import { BufferPool, loadShard, type LoadedShard } from './shard-loader.js';

export interface OpenCacheOptions {
  /** Refuse a cache made from other inputs (E_FINGERPRINT_MISMATCH naming which). */
  expect?: ExpectedInputs;
  s3?: S3Options;
  store?: BlobStore;
  /**
   * Where shards' SHA-256 run: 'worker' (the default) on a hashing thread that the reader starts when it first needs
   * it and ends in close(); 'inline' on the reading thread; or on a ShardHasher the caller made (and closes), which
   * readers may share.
   */
  hashing?: 'worker' | 'inline' | ShardHasher;
}

export async function openCache(uri: string, opts: OpenCacheOptions = {}): Promise<CacheReader> {
  const hashing = opts.hashing ?? 'worker';
  if (hashing !== 'worker' && hashing !== 'inline' && !(hashing instanceof ShardHasher)) {
    throw new DistillError('E_USAGE', 'invalid hashing option for openCache', {
      expected: "'worker', 'inline' or a ShardHasher",
      found: String(hashing),
    });
  }
  const opened = await readManifest(uri, opts);
  checkExpected(opened.manifest, opts.expect, opened.store.describe(''));
  const hasher =
    hashing === 'worker'
      ? { hasher: new ShardHasher(), owned: true }
      : hashing === 'inline'
        ? { owned: false }
        : { hasher: hashing, owned: false };
  return new Reader(uri, opened, hasher);
}

interface Piece {
  shard: number;
  /** Epoch position of rows[0]. */
  position: number;
  rows: CacheRows;
  n: number;
}

class Reader implements CacheReader {
  readonly manifest: Manifest;
  readonly manifestSha: string;
  readonly rows: number;
  private readonly store: BlobStore;
  private readonly layout: CacheLayout;
  private reads = 0;
  private closed = false;
  /** Shard buffers and decode buffers recycled across this reader's `reuse` reads (epochs after the first reuse them). */
  private readonly pool = new BufferPool();
  private readonly spareSlots: DecodeTarget[] = [];

  constructor(
    readonly uri: string,
    o: OpenedCache,
    /** Where shards are hashed (none: on the reading thread); `owned`: this reader closes it. */
    private readonly hashing: { hasher?: ShardHasher; owned: boolean },
  ) {
    this.manifest = o.manifest;
    this.manifestSha = o.manifestSha;
    this.rows = o.manifest.rows;
    this.store = o.store;
    this.layout = o.layout;
  }

  shardOrder(seed: number, epoch: number): number[] {
    return shardOrderFor(orderKeyFor(this.manifest), this.manifest.numShards, seed, epoch);
  }

  shardReads(): number {
    return this.reads;
  }

  resume(state: ResumeState, extra: Omit<ReadOptions, 'seed' | 'epoch' | 'position'> = {}): ReadOptions {
    if (state.manifestSha !== this.manifestSha) {
      throw new DistillError(
        'E_FINGERPRINT_MISMATCH',
        `the resume state belongs to a different manifest than ${this.store.describe(MANIFEST_KEY)}`,
        {
          expected: `manifest sha ${state.manifestSha}`,
          found: `manifest sha ${this.manifestSha}`,
          hint: 'resume with the cache the run started on, or start a fresh epoch',
        },
      );
    }
    return { ...extra, seed: state.seed, epoch: state.epoch, position: state.position };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.hashing.owned) await this.hashing.hasher?.close();
  }

  async *batches(opts: ReadOptions): AsyncGenerator<PositionedRows> {
    const max = Math.max(1, opts.maxRows ?? 8192);
    const { k, samples } = this.layout;
    for await (const p of this.pieces(opts)) {
      for (let a = 0; a < p.n; a += max) {
        const b = Math.min(p.n, a + max);
        yield Object.assign(a === 0 && b === p.n ? p.rows : sliceRows(p.rows, a, b, k, samples), {
          position: p.position + a,
          shard: p.shard,
        });
      }
    }
  }

  async *sequences(opts: ReadOptions): AsyncGenerator<CacheSequence> {
    if (this.layout.masked) {
      yield* this.maskedSequences(opts);
      return;
    }
    const T = this.layout.seqLen;
    const { k, samples } = this.layout;
    if ((opts.position ?? 0) % T !== 0) {
      throw new DistillError('E_USAGE', 'a sequence read must resume at a sequence boundary', {
        expected: `a multiple of the sequence length ${T}`,
        found: String(opts.position),
      });
    }
    // A sequence can straddle record batches of one shard (several when T exceeds a batch's rows): its parts
    // are copied into one fresh buffer as they come, so a recycled decode buffer (`reuse`) never backs it.
    let partial: { shard: number; position: number; rows: CacheRows; have: number } | undefined;
    for await (const p of this.pieces(opts)) {
      let a = 0;
      if (partial) {
        const take = Math.min(T - partial.have, p.n);
        copyRows(partial.rows, partial.have, sliceRows(p.rows, 0, take, k, samples), k, samples);
        partial.have += take;
        a = take;
        if (partial.have < T) continue;
        yield { seq: firstSeq(partial.rows), position: partial.position, shard: partial.shard, rows: partial.rows };
        partial = undefined;
      }
      for (; a + T <= p.n; a += T) {
        const rows = sliceRows(p.rows, a, a + T, k, samples);
        yield { seq: firstSeq(rows), position: p.position + a, shard: p.shard, rows };
      }
      if (a < p.n) {
        partial = { shard: p.shard, position: p.position + a, rows: allocRows(T, k, samples), have: p.n - a };
        copyRows(partial.rows, 0, sliceRows(p.rows, a, p.n, k, samples), k, samples);
      }
    }
  }

  /**
   * The sequences of a masked cache: each is the run of rows with one seq (0…T of them, a sequence without a
   * scored position has none and is not yielded), copied into a fresh buffer since a run can straddle record
   * batches. `position` must be a sequence boundary (a cursor this method gave).
   */
  private async *maskedSequences(opts: ReadOptions): AsyncGenerator<CacheSequence> {
    const { k, samples, seqLen: T } = this.layout;
    let cur: { shard: number; position: number; seq: number; rows: CacheRows; have: number } | undefined;
    const done = (): CacheSequence | undefined =>
      cur
        ? { seq: cur.seq, position: cur.position, shard: cur.shard, rows: sliceRows(cur.rows, 0, cur.have, k, samples) }
        : undefined;
    for await (const p of this.pieces(opts)) {
      for (let a = 0; a < p.n;) {
        const seq = p.rows.seq[a] ?? 0;
        let b = a + 1;
        while (b < p.n && p.rows.seq[b] === seq) b++;
        if (!cur || cur.seq !== seq || cur.shard !== p.shard) {
          const out = done();
          if (out) yield out;
          cur = { shard: p.shard, position: p.position + a, seq, rows: allocRows(T, k, samples), have: 0 };
        }
        if (cur.have + (b - a) > T)
          throw new DistillError('E_CACHE_FORMAT', `shard ${p.shard}: sequence ${seq} has more than ${T} rows`, {
            expected: `at most T = ${T} scored positions`,
            subject: `shard ${p.shard}`,
          });
        copyRows(cur.rows, cur.have, sliceRows(p.rows, a, b, k, samples), k, samples);
        cur.have += b - a;
        a = b;
      }
    }
    const out = done();
    if (out) yield out;
  }

  /** Record batches in epoch order from `position`, each shard verified before its first row. */
  private async *pieces(opts: ReadOptions): AsyncGenerator<Piece> {
    const start = this.startOf(opts);
    const { todo, base } = this.shardsFrom(this.shardOrder(opts.seed, opts.epoch), start);
    // With `reuse`, shard bytes go into recycled buffers too; a shard's buffer returns to the pool when the
    // consumer asks for rows past the shard (its last yielded rows may be views of those bytes until then).
    const pool = opts.reuse ? this.pool : undefined;
    const prefetch = new Prefetch(todo, Math.max(1, opts.prefetch ?? 2) + 1, (rec, hashAfter, hashStarted) =>
      loadShard(this.store, rec, this.manifest, this.layout, {
        pool,
        hasher: this.hashing.hasher,
        hashAfter,
        hashStarted,
      }),
    );
    prefetch.fill();
    const slots = opts.reuse
      ? new DecodeSlots([this.spareSlots.pop() ?? emptySlot(), this.spareSlots.pop() ?? emptySlot()], this.layout.k)
      : undefined;
    let previous: LoadedShard | undefined;
    let position = base;
    try {
      for (;;) {
        if (this.closed || opts.signal?.aborted) return;
        const shard = await prefetch.take();
        if (!shard) return;
        pool?.release(previous?.buffer);
        previous = shard;
        this.reads++;
        prefetch.fill();
        yield* this.shardPieces(shard, position, start, slots, prefetch);
        position += shard.record.rows;
      }
    } finally {
      // The consumer is done with the last rows once it asks past them or stops.
      pool?.release(previous?.buffer);
      if (slots) this.spareSlots.push(...slots.slots);
    }
  }

  /** Checks the read options; returns the epoch position to start from. */
  private startOf(opts: ReadOptions): number {
    const { seed, epoch } = opts;
    if (!Number.isInteger(seed) || !Number.isInteger(epoch) || epoch < 0) {
      throw new DistillError('E_USAGE', 'invalid read options', {
        expected: 'integer seed and epoch ≥ 0',
        found: `seed ${seed}, epoch ${epoch}`,
      });
    }
    const start = opts.position ?? 0;
    if (!Number.isInteger(start) || start < 0 || start > this.rows) {
      throw new DistillError('E_USAGE', 'resume position outside the epoch', {
        expected: `an integer in [0, ${this.rows}]`,
        found: String(start),
      });
    }
    return start;
  }

  /**
   * The shards to read, in epoch order: from the first one that still has rows at or after `start` on, empty ones
   * left out; `base` is the epoch position of that first shard's first row.
   */
  private shardsFrom(order: number[], start: number): { todo: CommitRecord[]; base: number } {
    let base = 0;
    const todo: CommitRecord[] = [];
    for (const index of order) {
      const rec = this.manifest.shards[index];
      invariant(rec, `the manifest lists shard ${index}`);
      if (todo.length === 0 && base + rec.rows <= start) base += rec.rows;
      else if (rec.rows > 0) todo.push(rec);
    }
    return { todo, base };
  }

  /** One shard's record batches as pieces, the first at epoch position `position`, rows before `start` skipped. */
  private async *shardPieces(
    shard: LoadedShard,
    position: number,
    start: number,
    slots: DecodeSlots | undefined,
    prefetch: Prefetch,
  ): AsyncGenerator<Piece> {
    const { k, samples } = this.layout;
    for (const batch of shard.batches) {
      const n = batch.numRows;
      if (position + n <= start || n === 0) {
        position += n;
        continue;
      }
      // One turn of the event loop before each decode, so that the shards in flight advance (their reads
      // complete, their hashes start on the hashing thread and their results are taken in) while this thread
      // decodes: a consumer that never waits on anything else would otherwise leave them stalled until the
      // next shard boundary, and the hashing would not overlap the decoding.
      if (prefetch.pending > 0) await loopTurn();
      let rows = decodeBatch(batch, this.layout, slots?.target(n));
      let m = n;
      if (position < start) {
        const skip = start - position;
        rows = sliceRows(rows, skip, n, k, samples);
        position = start;
        m = n - skip;
      }
      yield { shard: shard.record.shard, position, rows, n: m };
      position += m;
    }
  }
}

type LoadFn = (rec: CommitRecord, hashAfter: Promise<void>, hashStarted: () => void) => Promise<LoadedShard>;

/** Shards loading ahead of the consumer, up to `window` at once, taken in reading order. */
class Prefetch {
  private readonly inflight: Array<Promise<LoadedShard>> = [];
  private next = 0;
  // Shards are hashed in reading order: a later shard whose bytes arrived first waits for the earlier ones to be
  // handed to the hasher, so the shard needed next is never queued behind one needed later.
  private hashGate: Promise<void> = Promise.resolve();

  constructor(
    private readonly todo: CommitRecord[],
    private readonly window: number,
    private readonly load: LoadFn,
  ) {}

  /** Shards started and not yet taken. */
  get pending(): number {
    return this.inflight.length;
  }

  /** Starts loading shards until `window` are in flight. */
  fill(): void {
    for (;;) {
      const rec = this.inflight.length < this.window ? this.todo[this.next] : undefined;
      if (!rec) return;
      this.next++;
      const hashAfter = this.hashGate;
      let hashStarted: () => void = () => undefined;
      this.hashGate = new Promise<void>((resolve) => (hashStarted = resolve));
      const p = this.load(rec, hashAfter, hashStarted);
      p.catch(() => undefined); // surfaced when taken, in order
      this.inflight.push(p);
    }
  }

  /** The next shard in reading order (undefined when none is left); its failure is thrown here. */
  async take(): Promise<LoadedShard | undefined> {
    return this.inflight.shift();
  }
}

/**
 * With `reuse`, record batches decode alternately into two buffers: the one a consumer may still hold (the batch
 * just yielded, or a sequence's first part) is never the one being written.
 */
class DecodeSlots {
  private turn = 0;

  constructor(
    readonly slots: DecodeTarget[],
    private readonly k: number,
  ) {}

  target(n: number): DecodeTarget {
    const i = this.turn++ % this.slots.length;
    let slot = this.slots[i];
    if (!slot || slot.ids.length < n * this.k) {
      slot = { ids: new Uint32Array(n * this.k), logp: new Float32Array(n * this.k) };
      this.slots[i] = slot;
    }
    return slot;
  }
}

const loopTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function emptySlot(): DecodeTarget {
  return { ids: new Uint32Array(0), logp: new Float32Array(0) };
}

/** The sequence index of a whole sequence's rows. */
function firstSeq(rows: CacheRows): number {
  const seq = rows.seq[0];
  invariant(seq !== undefined, 'a sequence has at least one row');
  return seq;
}
