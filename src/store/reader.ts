// The cache reader: trusts only manifest.json; yields rows in an order that is a pure function of
// (content key, seed, epoch) — shards shuffled, rows within a shard in (seq, pos) order — with
// shard-parallel prefetch, every shard verified before its first row, and exact resume by position.
import { createHash } from 'node:crypto';
import { DistillError } from '../core/errors.js';
import { mulberry32 } from '../core/random.js';
import type {
  CacheLayout,
  CacheReader,
  CacheRows,
  CacheSequence,
  ExpectedInputs,
  Manifest,
  PositionedRows,
  ReadOptions,
  ResumeState,
  S3Options,
} from './api.js';
import { openStore, sha256Hex, type BlobStore } from './blob.js';
import { ensureCodecs } from './codecs.js';
import { decodeBatch, FORMAT_VERSION, sliceRows, type DecodeTarget } from './encode.js';
import { computeFingerprint, validateInputs } from './fingerprint.js';
import { commitKey, MANIFEST_KEY, RUN_KEY } from './keys.js';
import { BufferPool, loadShard, type LoadedShard } from './shard.js';

export interface OpenedCache {
  store: BlobStore;
  manifest: Manifest;
  manifestSha: string;
  layout: CacheLayout;
}

/** Reads and checks manifest.json (present, parseable, a version we read, self-consistent fingerprint). */
export async function readManifest(
  uri: string,
  opts: { s3?: S3Options; store?: BlobStore } = {},
): Promise<OpenedCache> {
  const store = opts.store ?? (await openStore(uri, opts.s3));
  const bytes = await store.get(MANIFEST_KEY);
  if (!bytes) {
    const run = await store.head(RUN_KEY);
    if (run) {
      const commits = (await store.list('commits/')).filter((b) => /^commits\/\d+\.json$/.test(b.key)).length;
      let total = '?';
      try {
        total = String(JSON.parse(new TextDecoder().decode((await store.get(RUN_KEY))!)).numShards);
      } catch {
        /* the count is only for the message */
      }
      throw new DistillError(
        'E_CACHE_INCOMPLETE',
        `${store.describe('')} is an unfinished cache: no manifest.json (${commits} of ${total} shards committed)`,
        {
          subject: store.describe(MANIFEST_KEY),
          hint: 'finish the teacher run (rerunning skips committed shards), then `distill cache finalize <uri>`',
        },
      );
    }
    throw new DistillError('E_NOT_FOUND', `no logit cache at ${store.describe('')}`, {
      expected: store.describe(MANIFEST_KEY),
      found: 'nothing',
      subject: store.describe(''),
      hint: 'check the URI (a directory or s3://bucket/prefix holding manifest.json)',
    });
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes)) as Manifest;
  } catch (err) {
    throw new DistillError('E_CACHE_FORMAT', `${store.describe(MANIFEST_KEY)} is not valid JSON`, {
      subject: store.describe(MANIFEST_KEY),
      cause: err,
    });
  }
  if (
    !manifest ||
    typeof manifest !== 'object' ||
    !Number.isInteger(manifest.formatVersion) ||
    manifest.formatVersion < 1
  ) {
    throw new DistillError(
      'E_CACHE_FORMAT',
      `${store.describe(MANIFEST_KEY)} is not a cache manifest (no formatVersion)`,
      { subject: store.describe(MANIFEST_KEY) },
    );
  }
  if (manifest.formatVersion > FORMAT_VERSION) {
    throw new DistillError(
      'E_CACHE_VERSION',
      `${store.describe(MANIFEST_KEY)} has cache format version ${manifest.formatVersion}, newer than this Distillery reads`,
      {
        expected: `format version ≤ ${FORMAT_VERSION}`,
        found: String(manifest.formatVersion),
        subject: store.describe(MANIFEST_KEY),
        hint: 'upgrade Distillery to read this cache',
      },
    );
  }
  if (!manifest.inputs || !Array.isArray(manifest.shards)) {
    throw new DistillError('E_CACHE_FORMAT', `${store.describe(MANIFEST_KEY)} lacks inputs or shards`, {
      subject: store.describe(MANIFEST_KEY),
    });
  }
  const layout = validateInputs(manifest.inputs);
  if (layout.formatVersion !== manifest.formatVersion) {
    throw new DistillError(
      'E_CACHE_FORMAT',
      `${store.describe(MANIFEST_KEY)} says format version ${manifest.formatVersion}, but its encodings are those of version ${layout.formatVersion}`,
      {
        expected: `formatVersion ${layout.formatVersion} for encodings ${JSON.stringify(layout.encodings)}`,
        found: String(manifest.formatVersion),
        subject: store.describe(MANIFEST_KEY),
      },
    );
  }
  await ensureCodecs(layout.encodings.compression);
  const fp = computeFingerprint(manifest.inputs);
  if (fp !== manifest.fingerprint) {
    throw new DistillError(
      'E_CACHE_INTEGRITY',
      `${store.describe(MANIFEST_KEY)}: the fingerprint does not match its inputs (edited by hand?)`,
      {
        expected: fp,
        found: manifest.fingerprint,
        subject: store.describe(MANIFEST_KEY),
      },
    );
  }
  if (manifest.shards.length !== manifest.numShards || manifest.shards.some((s, i) => s.shard !== i)) {
    throw new DistillError(
      'E_CACHE_FORMAT',
      `${store.describe(MANIFEST_KEY)}: shard list is not 0..${manifest.numShards - 1} in order`,
      { subject: store.describe(MANIFEST_KEY) },
    );
  }
  return { store, manifest, manifestSha: sha256Hex(bytes), layout };
}

/** Refuses a cache made from a different tokenizer, dataset or teacher, naming which. */
export function checkExpected(manifest: Manifest, expect: ExpectedInputs | undefined, where: string): void {
  if (!expect) return;
  const checks: Array<[string, string | undefined, string]> = [
    ['tokenizer', expect.tokenizerSha256, manifest.inputs.tokenizer.sha256],
    ['dataset', expect.datasetSha256, manifest.inputs.dataset.sha256],
    ['teacher', expect.teacherSha256, manifest.inputs.teacher.sha256],
  ];
  const bad = checks.filter(([, want, have]) => want !== undefined && want !== have);
  if (bad.length) {
    throw new DistillError(
      'E_FINGERPRINT_MISMATCH',
      `the cache at ${where} was made from a different ${bad.map((b) => b[0]).join(' and ')}`,
      {
        expected: bad.map(([what, want]) => `${what} sha256 ${want}`).join(', '),
        found: bad.map(([what, , have]) => `${what} sha256 ${have}`).join(', '),
        subject: where,
        hint: 'use the cache made for this dataset and tokenizer, or rerun the teacher on them',
      },
    );
  }
}

export async function openCache(
  uri: string,
  opts: { expect?: ExpectedInputs; s3?: S3Options; store?: BlobStore } = {},
): Promise<CacheReader> {
  const opened = await readManifest(uri, opts);
  checkExpected(opened.manifest, opts.expect, opened.store.describe(''));
  return new Reader(uri, opened);
}

/**
 * The content key of a cache's reading order: SHA-256 of the fingerprint and every shard's row count.
 * Two caches with the same content (the same inputs, so the same fingerprint) read in the same order,
 * whatever their creation time, writer ids or attempt names, so a rebuilt cache trains identically.
 */
export function orderKeyFor(manifest: Pick<Manifest, 'fingerprint' | 'shards'>): string {
  return sha256Hex(`${manifest.fingerprint}:${manifest.shards.map((r) => r.rows).join(',')}`);
}

/** mulberry32 seeded from the first 4 bytes of SHA-256(orderKey:seed:epoch). */
export function shardOrderFor(orderKey: string, numShards: number, seed: number, epoch: number): number[] {
  const h = createHash('sha256').update(`${orderKey}:${seed}:${epoch}`).digest();
  const rnd = mulberry32(h.readUInt32LE(0));
  const order = Array.from({ length: numShards }, (_, i) => i);
  for (let i = numShards - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
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
  }

  /** Record batches in epoch order from `position`, each shard verified before its first row. */
  private async *pieces(opts: ReadOptions): AsyncGenerator<Piece> {
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
    const order = this.shardOrder(seed, epoch);
    const shards = this.manifest.shards;
    // First shard that still has rows at or after `start`.
    let first = 0;
    let base = 0;
    while (first < order.length && base + shards[order[first]!]!.rows <= start) base += shards[order[first++]!]!.rows;
    const todo = order.slice(first).filter((s) => shards[s]!.rows > 0);
    const window = Math.max(1, opts.prefetch ?? 2) + 1;
    const inflight: Array<Promise<LoadedShard>> = [];
    // With `reuse`, shard bytes go into recycled buffers too; a shard's buffer returns to the pool when the
    // consumer asks for rows past the shard (its last yielded rows may be views of those bytes until then).
    const pool = opts.reuse ? this.pool : undefined;
    let next = 0;
    // Shards are hashed on the worker thread in reading order: a later shard whose bytes arrived first waits for
    // the earlier ones to be handed over, so the shard needed next is never queued behind one needed later.
    let hashGate: Promise<void> = Promise.resolve();
    const launch = () => {
      while (inflight.length < window && next < todo.length) {
        const hashAfter = hashGate;
        let hashStarted!: () => void;
        hashGate = new Promise<void>((resolve) => (hashStarted = resolve));
        const p = loadShard(this.store, shards[todo[next++]!]!, this.manifest, this.layout, {
          pool,
          hashAfter,
          hashStarted,
        });
        p.catch(() => undefined); // surfaced when awaited, in order
        inflight.push(p);
      }
    };
    launch();
    // With `reuse`, record batches decode alternately into two buffers: the one a consumer may still hold
    // (the batch just yielded, or a sequence's first part) is never the one being written.
    const k = this.layout.k;
    const slots: DecodeTarget[] = opts.reuse
      ? [this.spareSlots.pop() ?? emptySlot(), this.spareSlots.pop() ?? emptySlot()]
      : [];
    let turn = 0;
    const target = (n: number): DecodeTarget | undefined => {
      if (!opts.reuse) return undefined;
      const i = turn++ % 2;
      if (slots[i]!.ids.length < n * k) slots[i] = { ids: new Uint32Array(n * k), logp: new Float32Array(n * k) };
      return slots[i];
    };
    let previous: LoadedShard | undefined;
    let position = base;
    try {
      while (inflight.length) {
        if (this.closed || opts.signal?.aborted) return;
        const shard = await inflight.shift()!;
        pool?.release(previous?.buffer);
        previous = shard;
        this.reads++;
        launch();
        for (const batch of shard.batches) {
          const n = batch.numRows;
          if (position + n <= start || n === 0) {
            position += n;
            continue;
          }
          // One turn of the event loop before each decode, so that the shards in flight advance (their reads
          // complete, their hashes start on the worker thread and their results are taken in) while this thread
          // decodes: a consumer that never waits on anything else would otherwise leave them stalled until the
          // next shard boundary, and the hashing would not overlap the decoding.
          if (inflight.length) await loopTurn();
          let rows = decodeBatch(batch, this.layout, target(n));
          let m = n;
          if (position < start) {
            const skip = start - position;
            rows = sliceRows(rows, skip, n, this.layout.k, this.layout.samples);
            position = start;
            m = n - skip;
          }
          yield { shard: shard.record.shard, position, rows, n: m };
          position += m;
        }
      }
    } finally {
      // The consumer is done with the last rows once it asks past them or stops.
      pool?.release(previous?.buffer);
      this.spareSlots.push(...slots);
    }
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
        yield { seq: partial.rows.seq[0]!, position: partial.position, shard: partial.shard, rows: partial.rows };
        partial = undefined;
      }
      for (; a + T <= p.n; a += T) {
        const rows = sliceRows(p.rows, a, a + T, k, samples);
        yield { seq: rows.seq[0]!, position: p.position + a, shard: p.shard, rows };
      }
      if (a < p.n) {
        partial = { shard: p.shard, position: p.position + a, rows: allocRows(T, k, samples), have: p.n - a };
        copyRows(partial.rows, 0, sliceRows(p.rows, a, p.n, k, samples), k, samples);
      }
    }
  }
}

const loopTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function emptySlot(): DecodeTarget {
  return { ids: new Uint32Array(0), logp: new Float32Array(0) };
}

function allocRows(n: number, k: number, s: number): CacheRows {
  return {
    seq: new Uint32Array(n),
    pos: new Uint32Array(n),
    ids: new Uint32Array(n * k),
    logp: new Float32Array(n * k),
    tail: new Float32Array(n),
    ...(s > 0 ? { samples: new Uint32Array(n * s), sampleCounts: new Uint16Array(n * s) } : {}),
  };
}

/** Copies `src` into `out` from row `o` on. */
function copyRows(out: CacheRows, o: number, src: CacheRows, k: number, s: number): void {
  out.seq.set(src.seq, o);
  out.pos.set(src.pos, o);
  out.ids.set(src.ids, o * k);
  out.logp.set(src.logp, o * k);
  out.tail.set(src.tail, o);
  if (s > 0) {
    out.samples!.set(src.samples!, o * s);
    out.sampleCounts!.set(src.sampleCounts!, o * s);
  }
}

export { commitKey };
