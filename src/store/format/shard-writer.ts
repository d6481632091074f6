// Writing one shard file: rows streamed into an Arrow IPC file as record batches of about TARGET_BATCH_BYTES,
// checked to come as whole sequences in (seq, pos) order (or, masked, in strictly increasing (seq, pos) order),
// hashed and counted on their way to disk.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Schema } from 'apache-arrow';
import { DistillError } from '../../core/errors.js';
import { makeDir } from '../files.js';
import type { CacheLayout, CacheRows } from '../api.js';
import { checkRows, encodeBatch, inShard } from './columns.js';
import { compressionType, SpecRecordBatchFileWriter } from './compression.js';
import { packedCodeFor } from './packed.js';
import { allocRows, copyRows, sliceRows } from './rows.js';
import { bytesPerRow, cacheSchema, layoutMetadata, packedMetadata } from './schema.js';

/** Target record batch size; the spec allows 1–8 MB. */
export const TARGET_BATCH_BYTES = 4 * 1024 * 1024;

export interface WrittenShard {
  bytes: number;
  rows: number;
  sha256: string;
}

export interface ShardFileOptions {
  /** The least fraction of a body buffer's bytes compression must save to be stored compressed (MIN_SAVINGS). */
  minSavings?: number;
}

/**
 * Streams rows into a new Arrow IPC file at `file` (created exclusively), re-chunked into record batches of about
 * TARGET_BATCH_BYTES; refuses rows that are not whole sequences in (seq, pos) order.
 */
export async function writeShardFile(
  file: string,
  shard: number,
  layout: CacheLayout,
  fingerprint: string,
  source: AsyncIterable<CacheRows> | Iterable<CacheRows>,
  opts: ShardFileOptions = {},
): Promise<WrittenShard> {
  const order = layout.masked ? new MaskedOrder(layout.seqLen, shard) : new SequenceOrder(layout.seqLen, shard);
  const batches = new RowBatcher(layout, Math.max(1, Math.floor(TARGET_BATCH_BYTES / bytesPerRow(layout))));
  const out = await HashedFile.create(file);
  try {
    const writer = new SpecRecordBatchFileWriter({
      compressionType: compressionType(layout.encodings.compression),
      minSavings: opts.minSavings,
    });
    // The schema goes out with the first batch: a packed shard's code tables are built from that batch's rows.
    let schema: Schema | undefined;
    const flush = async (rows: CacheRows, n: number) => {
      schema ??= shardSchema(layout, fingerprint, shard, rows, n);
      writer.write(encodeBatch(schema, layout, rows, n, shard));
      // Lets the drain below write out what the Arrow writer queued before the next batch is encoded.
      await new Promise((resolve) => setImmediate(resolve));
    };
    const draining = out.drain(writer);
    try {
      for await (const rows of source as AsyncIterable<CacheRows>) {
        const n = checkRows(rows, layout, shard);
        order.check(rows, n);
        await batches.add(rows, n, flush);
      }
      order.finish();
      await batches.finish(flush);
    } finally {
      writer.finish();
      await draining;
    }
    await out.sync();
  } finally {
    await out.close();
  }
  return { bytes: out.bytes, rows: batches.total, sha256: out.sha256() };
}

/** The shard's schema and metadata; a packed shard's code tables come from its first n rows. */
function shardSchema(layout: CacheLayout, fingerprint: string, shard: number, rows: CacheRows, n: number): Schema {
  const meta = { ...layoutMetadata(layout, fingerprint), 'distillery.shard': String(shard) };
  if (layout.encodings.ids === 'packed') {
    try {
      Object.assign(meta, packedMetadata(packedCodeFor(rows.ids, rows.logp, n, layout.k, layout.vocabSize)));
    } catch (err) {
      throw inShard(err, shard);
    }
  }
  return cacheSchema(layout, meta);
}

/** Checks that rows come as whole sequences in (seq, pos) order: positions 0..T−1 each, sequences increasing. */
class SequenceOrder {
  private prevSeq = -1;
  private prevPos: number;
  private seen = 0;

  constructor(
    private readonly seqLen: number,
    private readonly shard: number,
  ) {
    this.prevPos = seqLen - 1;
  }

  check(rows: CacheRows, n: number): void {
    const { seqLen, shard } = this;
    for (let i = 0; i < n; i++) {
      const s = rows.seq[i] ?? -1;
      const p = rows.pos[i] ?? -1;
      const { prevSeq, prevPos } = this;
      const ok = p === 0 ? prevPos === seqLen - 1 && s > prevSeq : s === prevSeq && p === prevPos + 1;
      if (!ok) {
        throw new DistillError(
          'E_CACHE_FORMAT',
          `shard ${shard}: rows are not whole sequences in (seq, pos) order at row ${this.seen + i}`,
          {
            expected: p === 0 ? `seq > ${prevSeq} after pos ${seqLen - 1}` : `(seq ${prevSeq}, pos ${prevPos + 1})`,
            found: `(seq ${s}, pos ${p})${prevPos !== seqLen - 1 && p === 0 ? `; sequence ${prevSeq} stopped at pos ${prevPos}` : ''}`,
            subject: `shard ${shard}`,
            hint: `each sequence must contribute all ${seqLen} positions 0..${seqLen - 1}, sequences in increasing order`,
          },
        );
      }
      this.prevSeq = s;
      this.prevPos = p;
    }
    this.seen += n;
  }

  /** Refuses a shard whose last sequence stops short. */
  finish(): void {
    const { seqLen, shard, prevSeq, prevPos } = this;
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
  }
}

/**
 * Checks the rows of a masked cache: strictly increasing (seq, pos), pos < T. Which positions a sequence has is the
 * dataset's loss mask; the reader that joins rows to the dataset checks them against it.
 */
class MaskedOrder {
  private prevSeq = -1;
  private prevPos = -1;
  private seen = 0;

  constructor(
    private readonly seqLen: number,
    private readonly shard: number,
  ) {}

  check(rows: CacheRows, n: number): void {
    const { seqLen, shard } = this;
    for (let i = 0; i < n; i++) {
      const s = rows.seq[i] ?? -1;
      const p = rows.pos[i] ?? -1;
      const ok = p >= 0 && p < seqLen && (s > this.prevSeq || (s === this.prevSeq && p > this.prevPos));
      if (!ok)
        throw new DistillError(
          'E_CACHE_FORMAT',
          `shard ${shard}: masked rows out of (seq, pos) order at row ${this.seen + i}`,
          {
            expected: `(seq, pos) after (${this.prevSeq}, ${this.prevPos}) with pos < ${seqLen}`,
            found: `(seq ${s}, pos ${p})`,
            subject: `shard ${shard}`,
          },
        );
      this.prevSeq = s;
      this.prevPos = p;
    }
    this.seen += n;
  }

  finish(): void {}
}

type Flush = (rows: CacheRows, n: number) => Promise<void>;

/**
 * Re-chunks rows into batches of `cap` rows. Each batch gets fresh arrays: the Arrow writer queues views of them
 * until the file drain has written them out.
 */
class RowBatcher {
  /** Rows taken so far. */
  total = 0;
  private buf: CacheRows;
  private fill = 0;

  constructor(
    private readonly layout: CacheLayout,
    private readonly cap: number,
  ) {
    this.buf = allocRows(cap, layout.k, layout.samples);
  }

  async add(rows: CacheRows, n: number, flush: Flush): Promise<void> {
    const { k, samples } = this.layout;
    for (let i = 0; i < n;) {
      const m = Math.min(n - i, this.cap - this.fill);
      copyRows(this.buf, this.fill, sliceRows(rows, i, i + m, k, samples), k, samples);
      this.fill += m;
      this.total += m;
      i += m;
      if (this.fill === this.cap) await this.flush(flush);
    }
  }

  /** Flushes the last partial batch; an empty shard still carries its schema in one zero-row batch. */
  async finish(flush: Flush): Promise<void> {
    if (this.fill > 0 || this.total === 0) await this.flush(flush);
  }

  private async flush(flush: Flush): Promise<void> {
    const { buf, fill } = this;
    this.buf = allocRows(this.cap, this.layout.k, this.layout.samples);
    this.fill = 0;
    await flush(buf, fill);
  }
}

/** A file created exclusively ('wx') that hashes (SHA-256) and counts every byte written to it. */
class HashedFile {
  bytes = 0;
  private readonly hash = createHash('sha256');

  private constructor(private readonly fh: fsp.FileHandle) {}

  static async create(file: string): Promise<HashedFile> {
    makeDir(path.dirname(file));
    return new HashedFile(await fsp.open(file, 'wx'));
  }

  /** Writes out every chunk `chunks` yields (the Arrow writer's byte queue) until it ends. */
  async drain(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const chunk of chunks) {
      this.hash.update(chunk);
      this.bytes += chunk.byteLength;
      await this.fh.write(chunk);
    }
  }

  sync(): Promise<void> {
    return this.fh.sync();
  }

  close(): Promise<void> {
    return this.fh.close();
  }

  sha256(): string {
    return this.hash.digest('hex');
  }
}
