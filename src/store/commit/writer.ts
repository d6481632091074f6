// The cache writer: streams the rows of one shard into an Arrow IPC file under a unique attempt key, uploads it,
// then offers its commit record put-if-absent (the first commit wins); finalize writes the manifest.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DistillError } from '../../core/errors.js';
import type {
  CacheInputs,
  CacheLayout,
  CacheRows,
  CacheWriter,
  CommitRecord,
  Manifest,
  S3Options,
  ShardOutcome,
} from '../api.js';
import type { BlobStore } from '../backends/blob-store.js';
import { openStore } from '../backends/open.js';
import { ensureCodecs } from '../format/compression.js';
import { schemaHash } from '../format/schema.js';
import { writeShardFile, type WrittenShard } from '../format/shard-writer.js';
import { committedShards, offerCommit, readCommit } from './commits.js';
import { computeFingerprint, validateInputs } from './fingerprint.js';
import { attemptKey, shardName } from './keys.js';
import { writeManifest } from './manifest.js';
import { claimRun } from './run.js';

export interface CacheWriterOptions {
  uri: string;
  inputs: CacheInputs;
  numShards: number;
  /** Names this writer in commit records (default host:pid). */
  writer?: string;
  s3?: S3Options;
  store?: BlobStore;
  /**
   * A body buffer is stored compressed only when compression saves at least this fraction of its bytes, else raw
   * (default MIN_SAVINGS; docs/cache-format.md, "Body compression"). It changes the shards' bytes, not their rows.
   */
  minSavings?: number;
}

export async function openCacheWriter(opts: CacheWriterOptions): Promise<CacheWriter> {
  const layout = validateInputs(opts.inputs);
  if (!Number.isInteger(opts.numShards) || opts.numShards < 1) {
    throw new DistillError('E_CONFIG', 'invalid shard count', {
      expected: 'an integer ≥ 1',
      found: String(opts.numShards),
    });
  }
  const minSavings = opts.minSavings;
  if (minSavings !== undefined && !(minSavings >= 0 && minSavings <= 1)) {
    throw new DistillError('E_CONFIG', 'invalid minSavings', {
      expected: 'a fraction in [0, 1]',
      found: String(minSavings),
    });
  }
  await ensureCodecs(layout.encodings.compression);
  const store = opts.store ?? (await openStore(opts.uri, opts.s3));
  const fingerprint = computeFingerprint(opts.inputs);
  await claimRun(store, {
    formatVersion: layout.formatVersion,
    fingerprint,
    numShards: opts.numShards,
    inputs: opts.inputs,
  });
  return new Writer(opts.uri, store, opts.inputs, layout, fingerprint, opts.numShards, {
    writerId: opts.writer ?? `${os.hostname()}:${process.pid}`,
    minSavings,
  });
}

class Writer implements CacheWriter {
  constructor(
    readonly uri: string,
    private readonly store: BlobStore,
    private readonly inputs: CacheInputs,
    private readonly layout: CacheLayout,
    readonly fingerprint: string,
    private readonly numShards: number,
    private readonly opts: { writerId: string; minSavings?: number },
  ) {}

  committedShards(): Promise<Set<number>> {
    return committedShards(this.store);
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
    const written = await this.upload(index, attempt, key, rows);
    const record: CommitRecord = {
      shard: index,
      key,
      bytes: written.bytes,
      rows: written.rows,
      sha256: written.sha256,
      schemaHash: schemaHash(this.layout),
      fingerprint: this.fingerprint,
      attempt,
      writer: this.opts.writerId,
    };
    const outcome = await offerCommit(this.store, record);
    if (outcome.status === 'lost-race') await this.store.delete(key).catch(() => undefined);
    return outcome;
  }

  /**
   * Writes the shard file at `key`: on a local store straight into place, otherwise into a temporary local file that
   * is then uploaded. A failure leaves nothing behind.
   */
  private async upload(
    index: number,
    attempt: string,
    key: string,
    rows: AsyncIterable<CacheRows> | Iterable<CacheRows>,
  ): Promise<WrittenShard> {
    const local = this.store.localPath(key);
    const file = local ?? path.join(os.tmpdir(), `distillery-${shardName(index)}-${attempt}.arrow`);
    try {
      const written = await writeShardFile(file, index, this.layout, this.fingerprint, rows, {
        minSavings: this.opts.minSavings,
      });
      if (!local) await this.store.putFile(key, file, written.bytes);
      return written;
    } catch (err) {
      await fsp.rm(file, { force: true });
      if (!local) await this.store.delete(key).catch(() => undefined);
      throw err;
    } finally {
      if (!local) await fsp.rm(file, { force: true });
    }
  }

  finalize(): Promise<Manifest> {
    return writeManifest(this.store, this.inputs, this.layout, this.fingerprint, this.numShards);
  }
}
