// The cache writer: streams rows of one shard into an Arrow IPC file (record batches of ~4 MB),
// uploads it under a unique attempt key, then commits it put-if-absent; finalize writes the manifest.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Schema } from 'apache-arrow';
import { DistillError } from '../core/errors.js';
import type {
  CacheInputs,
  CacheLayout,
  CacheRows,
  CacheWriter,
  CommitRecord,
  Manifest,
  S3Options,
  ShardOutcome,
} from './api.js';
import { openStore, sha256Hex, type BlobStore } from './blob.js';
import { compressionType, ensureCodecs, SpecRecordBatchFileWriter } from './codecs.js';
import {
  bytesPerRow,
  cacheSchema,
  checkRows,
  encodeBatch,
  inShard,
  layoutMetadata,
  packedMetadata,
  schemaHash,
} from './encode.js';
import { computeFingerprint, validateInputs } from './fingerprint.js';
import { packedCodeFor } from './packed.js';
import { attemptKey, commitKey, MANIFEST_KEY, RUN_KEY, shardName } from './keys.js';

/** Target record batch size; the spec allows 1–8 MB. */
export const TARGET_BATCH_BYTES = 4 * 1024 * 1024;

interface RunRecord {
  formatVersion: number;
  fingerprint: string;
  numShards: number;
  inputs: CacheInputs;
}

export async function openCacheWriter(opts: {
  uri: string;
  inputs: CacheInputs;
  numShards: number;
  writer?: string;
  s3?: S3Options;
  store?: BlobStore;
}): Promise<CacheWriter> {
  const layout = validateInputs(opts.inputs);
  if (!Number.isInteger(opts.numShards) || opts.numShards < 1) {
    throw new DistillError('E_CONFIG', 'invalid shard count', {
      expected: 'an integer ≥ 1',
      found: String(opts.numShards),
    });
  }
  await ensureCodecs(layout.encodings.compression);
  const store = opts.store ?? (await openStore(opts.uri, opts.s3));
  const fingerprint = computeFingerprint(opts.inputs);
  const run: RunRecord = {
    formatVersion: layout.formatVersion,
    fingerprint,
    numShards: opts.numShards,
    inputs: opts.inputs,
  };
  const body = new TextEncoder().encode(`${JSON.stringify(run, null, 2)}\n`);
  if (!(await store.putIfAbsent(RUN_KEY, body))) {
    const theirs = await readRun(store);
    if (theirs.fingerprint !== fingerprint || theirs.numShards !== opts.numShards) {
      throw new DistillError('E_FINGERPRINT_MISMATCH', `${store.describe('')} already holds a different cache`, {
        expected: `fingerprint ${fingerprint} with ${opts.numShards} shards`,
        found: `fingerprint ${theirs.fingerprint} with ${theirs.numShards} shards (${describeDiff(theirs.inputs, opts.inputs)})`,
        subject: store.describe(RUN_KEY),
        hint: 'write to a new prefix, or delete the old cache first',
      });
    }
  }
  return new Writer(
    opts.uri,
    store,
    opts.inputs,
    layout,
    fingerprint,
    opts.numShards,
    opts.writer ?? `${os.hostname()}:${process.pid}`,
  );
}

/** `distill cache finalize <uri>`: writes the manifest of a cache whose every shard is committed. */
export async function finalizeCache(uri: string, opts: { s3?: S3Options; store?: BlobStore } = {}): Promise<Manifest> {
  const store = opts.store ?? (await openStore(uri, opts.s3));
  const run = await readRun(store);
  return finalizeWith(store, run.inputs, validateInputs(run.inputs), run.fingerprint, run.numShards);
}

async function readRun(store: BlobStore): Promise<RunRecord> {
  const bytes = await store.get(RUN_KEY);
  if (!bytes) {
    throw new DistillError('E_NOT_FOUND', `no cache at ${store.describe('')}`, {
      expected: `${store.describe(RUN_KEY)} (written when a teacher run starts)`,
      found: 'nothing',
      subject: store.describe(''),
      hint: 'check the URI, or run `distill teacher run` to create the cache',
    });
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as RunRecord;
  } catch (err) {
    throw new DistillError('E_CACHE_FORMAT', `${store.describe(RUN_KEY)} is not valid JSON`, {
      subject: store.describe(RUN_KEY),
      cause: err,
    });
  }
}

function describeDiff(a: CacheInputs, b: CacheInputs): string {
  const diffs: string[] = [];
  if (a.teacher.sha256 !== b.teacher.sha256) diffs.push('teacher differs');
  if (a.tokenizer.sha256 !== b.tokenizer.sha256) diffs.push('tokenizer differs');
  if (a.dataset.sha256 !== b.dataset.sha256) diffs.push('dataset differs');
  if (
    a.k !== b.k ||
    a.temperature !== b.temperature ||
    a.vocabSize !== b.vocabSize ||
    (a.samples ?? 0) !== (b.samples ?? 0)
  )
    diffs.push('k/temperature/vocab/samples differ');
  if (JSON.stringify(a.encodings) !== JSON.stringify(b.encodings)) diffs.push('encodings differ');
  return diffs.join(', ') || 'shard count differs';
}

async function readCommit(store: BlobStore, index: number): Promise<CommitRecord | null> {
  const bytes = await store.get(commitKey(index));
  if (!bytes) return null;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as CommitRecord;
  } catch (err) {
    throw new DistillError('E_CACHE_FORMAT', `commit record of shard ${index} is not valid JSON`, {
      subject: store.describe(commitKey(index)),
      cause: err,
    });
  }
}

async function finalizeWith(
  store: BlobStore,
  inputs: CacheInputs,
  layout: CacheLayout,
  fingerprint: string,
  numShards: number,
): Promise<Manifest> {
  const existing = await store.get(MANIFEST_KEY);
  if (existing) {
    const m = JSON.parse(new TextDecoder().decode(existing)) as Manifest;
    if (m.fingerprint !== fingerprint) {
      throw new DistillError('E_FINGERPRINT_MISMATCH', `${store.describe(MANIFEST_KEY)} belongs to a different cache`, {
        expected: fingerprint,
        found: m.fingerprint,
        subject: store.describe(MANIFEST_KEY),
      });
    }
    return m;
  }
  const listed = new Set((await store.list('commits/')).map((b) => b.key));
  const missing: number[] = [];
  for (let i = 0; i < numShards; i++) if (!listed.has(commitKey(i))) missing.push(i);
  if (missing.length) {
    const shown = missing.slice(0, 20).join(', ') + (missing.length > 20 ? `, … (${missing.length} in all)` : '');
    throw new DistillError(
      'E_CACHE_INCOMPLETE',
      `cannot finalize ${store.describe('')}: ${missing.length} of ${numShards} shards have no commit (shards ${shown})`,
      {
        subject: store.describe(''),
        hint: 'rerun the teacher (committed shards are skipped), then `distill cache finalize <uri>`',
      },
    );
  }
  const sh = schemaHash(layout);
  const records: CommitRecord[] = [];
  for (let i = 0; i < numShards; i += 16) {
    const chunk = await Promise.all(
      Array.from({ length: Math.min(16, numShards - i) }, async (_, j) => {
        const rec = (await readCommit(store, i + j))!;
        if (rec.fingerprint !== fingerprint || rec.schemaHash !== sh || rec.shard !== i + j) {
          throw new DistillError('E_CACHE_INTEGRITY', `commit record of shard ${i + j} belongs to a different cache`, {
            expected: `fingerprint ${fingerprint}`,
            found: `fingerprint ${rec.fingerprint}`,
            subject: store.describe(commitKey(i + j)),
          });
        }
        const head = await store.head(rec.key);
        if (!head || head.size !== rec.bytes) {
          throw new DistillError(
            'E_CACHE_INTEGRITY',
            `shard ${i + j}: committed object ${head ? 'has the wrong size' : 'is missing'}`,
            {
              expected: `${rec.bytes} bytes`,
              found: head ? `${head.size} bytes` : 'nothing',
              subject: store.describe(rec.key),
              hint: `delete ${store.describe(commitKey(i + j))} and rerun the teacher for that shard`,
            },
          );
        }
        return rec;
      }),
    );
    records.push(...chunk);
  }
  const manifest: Manifest = {
    formatVersion: layout.formatVersion,
    fingerprint,
    createdAt: new Date().toISOString(),
    inputs,
    numShards,
    rows: records.reduce((s, r) => s + r.rows, 0),
    bytes: records.reduce((s, r) => s + r.bytes, 0),
    shards: records,
  };
  const body = new TextEncoder().encode(`${JSON.stringify(manifest, null, 1)}\n`);
  if (!(await store.putIfAbsent(MANIFEST_KEY, body))) {
    // Another finalizer won; its manifest covers the same commits.
    const theirs = JSON.parse(new TextDecoder().decode((await store.get(MANIFEST_KEY))!)) as Manifest;
    return theirs;
  }
  return manifest;
}

class Writer implements CacheWriter {
  constructor(
    readonly uri: string,
    private readonly store: BlobStore,
    private readonly inputs: CacheInputs,
    private readonly layout: CacheLayout,
    readonly fingerprint: string,
    private readonly numShards: number,
    private readonly writerId: string,
  ) {}

  async committedShards(): Promise<Set<number>> {
    const out = new Set<number>();
    for (const b of await this.store.list('commits/')) {
      const m = /^commits\/(\d+)\.json$/.exec(b.key);
      if (m) out.add(Number(m[1]));
    }
    return out;
  }

  async writeShard(index: number, rows: AsyncIterable<CacheRows> | Iterable<CacheRows>): Promise<ShardOutcome> {
    if (!Number.isInteger(index) || index < 0 || index >= this.numShards) {
      throw new DistillError('E_USAGE', `shard index ${index} is out of range`, {
        expected: `0..${this.numShards - 1}`,
        found: String(index),
      });
    }
    const before = await readCommit(this.store, index);
    if (before) return { status: 'lost-race', record: before };

    const attempt = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    const key = attemptKey(index, attempt);
    const local = this.store.localPath(key);
    const file = local ?? path.join(os.tmpdir(), `distillery-${shardName(index)}-${attempt}.arrow`);
    let written: { bytes: number; rows: number; sha256: string };
    try {
      written = await writeArrowFile(file, index, this.layout, this.fingerprint, rows);
      if (!local) await this.store.putFile(key, file, written.bytes);
    } catch (err) {
      await fsp.rm(file, { force: true });
      if (!local) await this.store.delete(key).catch(() => undefined);
      throw err;
    } finally {
      if (!local) await fsp.rm(file, { force: true });
    }
    const record: CommitRecord = {
      shard: index,
      key,
      bytes: written.bytes,
      rows: written.rows,
      sha256: written.sha256,
      schemaHash: schemaHash(this.layout),
      fingerprint: this.fingerprint,
      attempt,
      writer: this.writerId,
    };
    const body = new TextEncoder().encode(`${JSON.stringify(record, null, 1)}\n`);
    if (await this.store.putIfAbsent(commitKey(index), body)) {
      // Servers that ignore If-None-Match (s3rver) overwrite instead of refusing: read back to learn who won.
      const now = await readCommit(this.store, index);
      if (now && now.attempt !== attempt) return this.lost(now, key);
      return { status: 'committed', record };
    }
    const theirs = await readCommit(this.store, index);
    if (!theirs)
      throw new DistillError('E_STORE_CONFLICT', `shard ${index}: commit refused but no commit record is readable`, {
        subject: this.store.describe(commitKey(index)),
      });
    return this.lost(theirs, key);
  }

  private async lost(theirs: CommitRecord, ourKey: string): Promise<ShardOutcome> {
    await this.store.delete(ourKey).catch(() => undefined);
    return { status: 'lost-race', record: theirs };
  }

  finalize(): Promise<Manifest> {
    return finalizeWith(this.store, this.inputs, this.layout, this.fingerprint, this.numShards);
  }
}

/**
 * Streams rows into an Arrow IPC file at `file`, re-chunked into record batches of about
 * TARGET_BATCH_BYTES; checks that rows come as whole sequences in (seq, pos) order.
 */
async function writeArrowFile(
  file: string,
  shard: number,
  layout: CacheLayout,
  fingerprint: string,
  source: AsyncIterable<CacheRows> | Iterable<CacheRows>,
): Promise<{ bytes: number; rows: number; sha256: string }> {
  const { k, samples, seqLen } = layout;
  // The schema goes out with the first batch: a packed shard's level code is built from that batch's rows.
  let schema: Schema | undefined;
  const schemaFor = (rows: CacheRows, n: number): Schema => {
    const meta = { ...layoutMetadata(layout, fingerprint), 'distillery.shard': String(shard) };
    if (layout.encodings.ids === 'packed') {
      try {
        Object.assign(meta, packedMetadata(packedCodeFor(rows.ids, rows.logp, n, k, layout.vocabSize)));
      } catch (err) {
        throw inShard(err, shard);
      }
    }
    return cacheSchema(layout, meta);
  };
  const cap = Math.max(1, Math.floor(TARGET_BATCH_BYTES / bytesPerRow(layout)));
  // Fresh arrays per batch: the Arrow writer queues views of them until the file consumer drains it.
  const alloc = (): CacheRows => ({
    seq: new Uint32Array(cap),
    pos: new Uint32Array(cap),
    ids: new Uint32Array(cap * k),
    logp: new Float32Array(cap * k),
    tail: new Float32Array(cap),
    ...(samples > 0 ? { samples: new Uint32Array(cap * samples), sampleCounts: new Uint16Array(cap * samples) } : {}),
  });
  let buf = alloc();
  let fill = 0;
  let total = 0;
  let prevSeq = -1;
  let prevPos = seqLen - 1;

  await fsp.mkdir(path.dirname(file), { recursive: true });
  const fh = await fsp.open(file, 'wx');
  const hash = createHash('sha256');
  let bytes = 0;
  const writer = new SpecRecordBatchFileWriter({ compressionType: compressionType(layout.encodings.compression) });
  // The consumer drains the Arrow writer's byte queue into the file while rows are encoded.
  const drain = (async () => {
    for await (const chunk of writer) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      await fh.write(chunk);
    }
  })();
  const flush = async () => {
    schema ??= schemaFor(buf, fill);
    writer.write(encodeBatch(schema, layout, buf, fill, shard));
    fill = 0;
    buf = alloc();
    await new Promise((r) => setImmediate(r));
  };
  try {
    try {
      for await (const rows of source as AsyncIterable<CacheRows>) {
        const n = checkRows(rows, layout, shard);
        for (let i = 0; i < n; i++) {
          const s = rows.seq[i]!;
          const p = rows.pos[i]!;
          const ok = p === 0 ? prevPos === seqLen - 1 && s > prevSeq : s === prevSeq && p === prevPos + 1;
          if (!ok) {
            throw new DistillError(
              'E_CACHE_FORMAT',
              `shard ${shard}: rows are not whole sequences in (seq, pos) order at row ${total + i}`,
              {
                expected: p === 0 ? `seq > ${prevSeq} after pos ${seqLen - 1}` : `(seq ${prevSeq}, pos ${prevPos + 1})`,
                found: `(seq ${s}, pos ${p})${prevPos !== seqLen - 1 && p === 0 ? `; sequence ${prevSeq} stopped at pos ${prevPos}` : ''}`,
                subject: `shard ${shard}`,
                hint: `each sequence must contribute all ${seqLen} positions 0..${seqLen - 1}, sequences in increasing order`,
              },
            );
          }
          prevSeq = s;
          prevPos = p;
        }
        let i = 0;
        while (i < n) {
          const m = Math.min(n - i, cap - fill);
          buf.seq.set(rows.seq.subarray(i, i + m), fill);
          buf.pos.set(rows.pos.subarray(i, i + m), fill);
          buf.ids.set(rows.ids.subarray(i * k, (i + m) * k), fill * k);
          buf.logp.set(rows.logp.subarray(i * k, (i + m) * k), fill * k);
          buf.tail.set(rows.tail.subarray(i, i + m), fill);
          if (samples > 0) {
            buf.samples!.set(rows.samples!.subarray(i * samples, (i + m) * samples), fill * samples);
            buf.sampleCounts!.set(rows.sampleCounts!.subarray(i * samples, (i + m) * samples), fill * samples);
          }
          fill += m;
          i += m;
          total += m;
          if (fill === cap) await flush();
        }
      }
      if (prevPos !== seqLen - 1) {
        throw new DistillError(
          'E_CACHE_FORMAT',
          `shard ${shard}: the last sequence (${prevSeq}) stops at pos ${prevPos}`,
          {
            expected: `all ${seqLen} positions`,
            subject: `shard ${shard}`,
          },
        );
      }
      // An empty shard still carries its schema in one zero-row batch.
      if (fill > 0 || total === 0) await flush();
    } finally {
      writer.finish();
      await drain;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { bytes, rows: total, sha256: hash.digest('hex') };
}

export { sha256Hex };
