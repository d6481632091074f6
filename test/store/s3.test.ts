// The cache on S3 against a real local S3-compatible server (s3rver, started by test/setup/s3.ts):
// round trip with multipart shards, racing writers, retries, and clear errors for bad buckets.
// s3rver ignores If-None-Match, so the 412 (someone else won) and 409 paths are proven by fault injection.
import { randomBytes } from 'node:crypto';
import { S3Client, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import {
  gcCache,
  inspectCache,
  openCache,
  openCacheWriter,
  verifyCache,
  type S3Options,
} from '../../src/store/index.js';
import { S3BlobStore } from '../../src/store/backends/s3.js';
import { inputs, noiseRows, synthRows, caught } from './helpers.js';

const endpoint = process.env.DISTILLERY_TEST_S3_ENDPOINT;
const bucket = process.env.DISTILLERY_TEST_S3_BUCKET;
if (!endpoint || !bucket) throw new Error('the s3rver test service did not start (test/setup/s3.ts)');

const creds = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const s3: S3Options = {
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  checksums: 'WHEN_REQUIRED',
  credentials: creds,
};
const T = 8;
const k = 5;
const fresh = () => `s3://${bucket}/t-${randomBytes(4).toString('hex')}`;

function client(maxAttempts = 3): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: creds,
    maxAttempts,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Makes PutObject calls matching `when` fail with an S3 error of `status`/`name` (before reaching the server). */
function inject(
  c: S3Client,
  when: (input: Record<string, unknown>) => boolean,
  status: number,
  name: string,
  times = 1,
): { hits: number } {
  const state = { hits: 0 };
  c.middlewareStack.add(
    (next, ctx) => async (args) => {
      if (ctx.commandName === 'PutObjectCommand' && when(args.input as Record<string, unknown>) && state.hits < times) {
        state.hits++;
        throw Object.assign(new Error(name), {
          name,
          $fault: status >= 500 ? 'server' : 'client',
          $metadata: { httpStatusCode: status },
        });
      }
      return next(args);
    },
    { step: 'deserialize', name: `inject-${name}-${Math.random()}` },
  );
  return state;
}

describe('cache on S3 (s3rver)', () => {
  it('writes, finalizes, reads back, verifies and inspects; large shards go multipart', async () => {
    const uri = fresh();
    const enc = { ids: 'uint32', logp: 'float32', compression: 'zstd' } as const;
    const c = client();
    const multipart = { uploads: 0 };
    c.middlewareStack.add(
      (next, ctx) => async (args) => {
        if (ctx.commandName === 'CreateMultipartUploadCommand') multipart.uploads++;
        return next(args);
      },
      { step: 'initialize', name: 'count-multipart' },
    );
    const store = S3BlobStore.withClient(uri, c, 5 * 1024 * 1024);
    const w = await openCacheWriter({
      uri,
      inputs: inputs({ sequences: 8, seqLen: 1024, k: 256, vocabSize: 50000, encodings: enc }),
      numShards: 2,
      store,
    });
    // ~6 MB per shard (noise does not compress): above the 5 MB multipart threshold set here.
    const big = noiseRows(0, 4, 1024, 256, 50000, 1);
    await w.writeShard(0, [big]);
    const rest = noiseRows(4, 8, 1024, 256, 50000, 2);
    await w.writeShard(1, [rest]);
    const m = await w.finalize();
    expect(m.shards[0]!.bytes).toBeGreaterThan(5 * 1024 * 1024);
    expect(multipart.uploads).toBeGreaterThanOrEqual(1);
    const r = await openCache(uri, { s3 });
    let n = 0;
    for await (const b of r.batches({ seed: 1, epoch: 0 })) {
      if (b.shard === 0) expect(b.ids[0]).toBe(big.ids[(b.seq[0]! * 1024 + b.pos[0]!) * 256]);
      n += b.seq.length;
    }
    expect(n).toBe(8 * 1024);
    expect((await verifyCache(uri, { s3 })).ok).toBe(true);
    const info = await inspectCache(uri, { s3 });
    expect(info.rows).toBe(8 * 1024);
    expect(info.bytesPerPosition).toBeCloseTo(m.bytes / m.rows);
  });

  it('a second writer finds the shard committed; concurrent commits leave one readable record (s3rver does not enforce If-None-Match)', async () => {
    const uri = fresh();
    const rows = synthRows(0, 2, T, k, 101);
    const a = await openCacheWriter({ uri, inputs: inputs(), numShards: 1, writer: 'A', s3 });
    expect((await a.writeShard(0, [rows])).status).toBe('committed');
    const b = await openCacheWriter({ uri, inputs: inputs(), numShards: 1, writer: 'B', s3 });
    const lost = await b.writeShard(0, [rows]);
    expect(lost.status).toBe('lost-race');
    expect(lost.record.writer).toBe('A');
    // Truly concurrent offers on a server that overwrites: whichever record is last stays, and it points at a whole shard.
    const uri2 = fresh();
    const [c, d] = await Promise.all(
      ['C', 'D'].map((w) => openCacheWriter({ uri: uri2, inputs: inputs(), numShards: 1, writer: w, s3 })),
    );
    const outs = await Promise.all([c!.writeShard(0, [rows]), d!.writeShard(0, [rows])]);
    expect(outs.some((o) => o.status === 'committed')).toBe(true);
    await c!.finalize();
    expect((await verifyCache(uri2, { s3 })).ok).toBe(true);
  });

  it('412 on the commit (fault-injected): the writer reads the winner, drops its own attempt', async () => {
    const uri = fresh();
    const c = client();
    const store = S3BlobStore.withClient(uri, c);
    const winner = await openCacheWriter({ uri, inputs: inputs(), numShards: 1, writer: 'winner', s3 });
    const rows = synthRows(0, 2, T, k, 101);
    const w = await openCacheWriter({ uri, inputs: inputs(), numShards: 1, writer: 'loser', store });
    let winnerRecord: unknown;
    // The winner commits while the loser uploads; the loser's conditional put then gets 412 as on AWS S3.
    const hit = inject(
      c,
      (i) => i.IfNoneMatch === '*' && String(i.Key).endsWith('commits/000000.json'),
      412,
      'PreconditionFailed',
    );
    c.middlewareStack.add(
      (next, ctx) => async (args) => {
        const input = args.input as Record<string, unknown>;
        if (
          ctx.commandName === 'PutObjectCommand' &&
          input.IfNoneMatch === '*' &&
          String(input.Key).endsWith('commits/000000.json') &&
          !winnerRecord
        ) {
          winnerRecord = (await winner.writeShard(0, [rows])).record;
        }
        return next(args);
      },
      { step: 'initialize', name: 'winner-first' },
    );
    const out = await w.writeShard(0, [rows]);
    expect(hit.hits).toBe(1);
    expect(out).toEqual({ status: 'lost-race', record: winnerRecord });
    const left = await store.list('shards/');
    expect(left.map((b) => b.key)).toEqual([(winnerRecord as { key: string }).key]);
  });

  it('409 on the commit is retried; 503 SlowDown and dropped connections are retried with backoff', async () => {
    const uri = fresh();
    const c = client(4);
    const store = S3BlobStore.withClient(uri, c);
    const conflict = inject(
      c,
      (i) => i.IfNoneMatch === '*' && String(i.Key).includes('commits/'),
      409,
      'ConditionalRequestConflict',
      2,
    );
    const slow = inject(c, (i) => String(i.Key).includes('shards/'), 503, 'SlowDown', 2);
    const w = await openCacheWriter({ uri, inputs: inputs(), numShards: 1, store });
    const reset = { hits: 0 };
    c.middlewareStack.add(
      (next, ctx) => async (args) => {
        if (ctx.commandName === 'GetObjectCommand' && reset.hits < 1) {
          reset.hits++;
          throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', $metadata: {} });
        }
        return next(args);
      },
      { step: 'deserialize', name: 'drop' },
    );
    expect((await w.writeShard(0, [synthRows(0, 2, T, k, 101)])).status).toBe('committed');
    expect(conflict.hits).toBe(2);
    expect(slow.hits).toBe(2);
    expect(reset.hits).toBe(1);
  });

  it('names the bucket when it is missing, unreachable or refuses the credentials', async () => {
    const missing = await caught(openCache(`s3://no-such-bucket-${randomBytes(3).toString('hex')}/x`, { s3 }));
    expect(missing.code).toBe('E_STORE_UNREACHABLE');
    expect(missing.message).toMatch(/bucket "no-such-bucket-\w+" does not exist/);
    const down = await caught(
      openCache(`s3://${bucket}/x`, { s3: { ...s3, endpoint: 'http://127.0.0.1:9', maxAttempts: 1 } }),
    );
    expect(down.code).toBe('E_STORE_UNREACHABLE');
    expect(down.message).toMatch(new RegExp(`cannot reach bucket "${bucket}"`));
    const denied = await caught(
      openCache(`s3://${bucket}/x`, { s3: { ...s3, credentials: { accessKeyId: 'WRONG', secretAccessKey: 'WRONG' } } }),
    );
    expect(denied.code).toBe('E_STORE_DENIED');
    expect(denied.message).toMatch(new RegExp(`access to bucket "${bucket}" denied.*AWS_ACCESS_KEY_ID`));
  });

  it('gc removes orphaned attempts on S3', async () => {
    const uri = fresh();
    const c = client();
    const store = S3BlobStore.withClient(uri, c);
    const w = await openCacheWriter({ uri, inputs: inputs(), numShards: 1, store });
    await w.writeShard(0, [synthRows(0, 1, T, k, 101)]);
    const { prefix } = { prefix: uri.slice(`s3://${bucket}/`.length) };
    await c.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/shards/000000/orphan.arrow`, Body: 'x' }));
    const dry = await gcCache(uri, { s3 });
    expect(dry.orphans.map((o) => o.key)).toEqual(['shards/000000/orphan.arrow']);
    await gcCache(uri, { s3, dryRun: false });
    expect((await store.list('shards/')).length).toBe(1);
  });
});
