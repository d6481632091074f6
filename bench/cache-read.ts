// Where a packed cache read spends its time, per position at V = 128256, k = 64 (Zipf rows, one 65536-row shard,
// packed + zstd): SHA-256 of the shard (on the main thread, and what the main thread pays when the worker thread or
// crypto.subtle hashes it), Arrow parsing (zstd included; with apache-arrow's rule for raw buffers and with ours),
// the native decoder on 1 and on 2 threads (and its portable path on 1), and the whole read: one shard (`reuse` and
// fresh arrays; its hash cannot overlap anything) and an 8-shard cache (prefetched shards read and hashed on the
// main thread, or read and hashed on the worker thread while the main thread decodes; epochs alternate between the
// two); plus what first-touching memory costs on this machine (a shard read into a fresh buffer vs into one
// already mapped). Best of REPS for each.
// Run: npx tsx bench/cache-read.ts [--record]   (--record rewrites `## cache read` in docs/benchmarks.md)
import { webcrypto } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RecordBatchFileReader } from 'apache-arrow';
import { loadNative } from '../src/native/loader.js';
import { decodeBatch } from '../src/store/format/columns.js';
import { ensureCodecs, MIN_SAVINGS } from '../src/store/format/compression.js';
import { decodePacked, type PackedCode } from '../src/store/format/packed.js';
import { schemaCode } from '../src/store/format/schema.js';
import { openCache, openCacheWriter, readManifest, sha256Hex, ShardHasher } from '../src/store/index.js';
import { inputs, zipfRows } from '../test/store/helpers.js';
import { machineLine, recordSection, table } from './record.js';
import { benchArgs } from './args.js';

const values = benchArgs(import.meta.url, { record: { type: 'boolean', default: false } });

const REPS = 7;
const V = 128256;
const k = 64;
const T = 256;
const n = 65536;

function best(f: () => void): number {
  let b = Infinity;
  for (let i = 0; i < REPS; i++) {
    const t = performance.now();
    f();
    b = Math.min(b, performance.now() - t);
  }
  return b;
}

async function bestAsync(f: () => Promise<void>): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < REPS; i++) {
    const t = performance.now();
    await f();
    b = Math.min(b, performance.now() - t);
  }
  return b;
}

const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'distillery-bench-cache-read-'));
const SHARDS = 8;
const rows = zipfRows(SHARDS * n, k, V, V + k, T);
const part = (s: number) => ({
  seq: rows.seq.subarray(s * n, (s + 1) * n),
  pos: rows.pos.subarray(s * n, (s + 1) * n),
  ids: rows.ids.subarray(s * n * k, (s + 1) * n * k),
  logp: rows.logp.subarray(s * n * k, (s + 1) * n * k),
  tail: rows.tail.subarray(s * n, (s + 1) * n),
});
/** A packed + zstd cache of `shards` × n rows, its buffers stored raw below `minSavings` (the writer's rule). */
async function writeCache(name: string, shards: number, minSavings = MIN_SAVINGS) {
  const dir = path.join(base, name);
  const w = await openCacheWriter({
    uri: dir,
    inputs: inputs({
      vocabSize: V,
      k,
      sequences: (shards * n) / T,
      seqLen: T,
      encodings: { ids: 'packed', logp: 'packed', compression: 'zstd' },
    }),
    numShards: shards,
    minSavings,
  });
  for (let s = 0; s < shards; s++) await w.writeShard(s, [part(s)]);
  return { dir, m: await w.finalize() };
}
const { dir, m } = await writeCache('one', 1);
const arrowRule = await writeCache('arrow-rule', 1, 0);
const many = await writeCache('many', SHARDS);
await ensureCodecs('zstd');
const { layout } = await readManifest(dir);
const file = path.join(dir, m.shards[0]!.key);
const bytes = await fsp.readFile(file);
const arrowRuleBytes = await fsp.readFile(path.join(arrowRule.dir, arrowRule.m.shards[0]!.key));
const perRow = (ms: number) => (ms * 1e6) / n;

const sha = best(() => void sha256Hex(bytes));
/** The main thread's share of an asynchronous hash (the call until it returns its promise), and the whole wait. */
async function offThread(f: () => Promise<unknown>): Promise<[number, number]> {
  let main = Infinity;
  let total = Infinity;
  for (let i = 0; i < REPS; i++) {
    const t = performance.now();
    const p = f();
    const t1 = performance.now();
    await p;
    main = Math.min(main, t1 - t);
    total = Math.min(total, performance.now() - t);
  }
  return [main, total];
}
const hasher = new ShardHasher();
const [workerMain, workerTotal] = await offThread(() => hasher.sha256(bytes));
await hasher.close();
const [subtleMain, subtleTotal] = await offThread(() => webcrypto.subtle.digest('SHA-256', bytes));
const parsedFrom = (b: Uint8Array) => () => {
  const r = RecordBatchFileReader.from(b);
  r.open();
  return [...r];
};
const parsed = parsedFrom(bytes);
const parse = best(() => void parsed());
const parseArrowRule = best(() => void parsedFrom(arrowRuleBytes)());
const batches = parsed();
const native = loadNative();
const into = { ids: new Uint32Array(n * k), logp: new Float32Array(n * k) };
const decodeOn = (threads: number) => {
  native.addon.setNumThreads(threads);
  return best(() => batches.forEach((b) => decodeBatch(b, layout, into)));
};
const decode1 = decodeOn(1);
const decode2 = decodeOn(os.availableParallelism());
// The same rows through the codec's portable decoder (field by field, no SIMD), 1 thread.
native.addon.setNumThreads(1);
const code = schemaCode(batches[0]!.schema, layout) as PackedCode;
const decodePortable = best(() =>
  batches.forEach((b) => {
    const d = b.getChild('topk')!.data[0]!;
    const ref = b.getChild('logp_ref')!.data[0]!.values as Float32Array;
    decodePacked(
      { offsets: d.valueOffsets as Int32Array, data: d.values as Uint8Array, ref },
      b.numRows,
      k,
      V,
      code,
      'bench',
      into,
      true,
    );
  }),
);
native.addon.setNumThreads(os.availableParallelism());
const readAll = async (uri: string, reuse: boolean) => {
  const reader = await openCache(uri);
  const ms = await bestAsync(async () => {
    for await (const b of reader.batches({ seed: 0, epoch: 0, reuse, maxRows: 1 << 20 })) void b;
  });
  await reader.close();
  return ms;
};
const readReuse = await readAll(dir, true);
const readFresh = await readAll(dir, false);
// The multi-shard read, epochs alternating between a reader that hashes on the main thread and one that hashes on
// its hashing thread (MANY_REPS each after a warm-up epoch of each), so that both see the same state of this shared
// machine: best and median.
const MANY_REPS = 11;
const [readManyMain, readManyWorker] = await (async () => {
  const inline = await openCache(many.dir, { hashing: 'inline' });
  const threaded = await openCache(many.dir, { hashing: 'worker' });
  const out: [number[], number[]] = [[], []];
  for (let i = 0; i < 2 * MANY_REPS + 2; i++) {
    const worker = i % 2;
    const t = performance.now();
    const reader = worker ? threaded : inline;
    for await (const b of reader.batches({ seed: 0, epoch: i, reuse: true, maxRows: 1 << 20 })) void b;
    if (i >= 2) out[worker].push(performance.now() - t);
  }
  await inline.close();
  await threaded.close();
  return out.map((times) => {
    const sorted = [...times].sort((a, b) => a - b);
    return { best: sorted[0]!, median: sorted[sorted.length >> 1]! };
  });
})();
const mapped = new Uint8Array(bytes.length);
const fh = await fsp.open(file, 'r');
const intoMapped = await bestAsync(async () => void (await fh.read(mapped, 0, mapped.length, 0)));
await fh.close();
const fresh = await bestAsync(async () => void (await fsp.readFile(file)));
await fsp.rm(base, { recursive: true, force: true });

const MBps = (ms: number) => (bytes.length / 1e6 / (ms / 1000)).toFixed(0);
const rate = (ms: number, positions = n) =>
  `${(positions / ms / 1e3).toFixed(2)} M${positions === n ? ' positions/s' : ''}`;
const steps: Array<Array<string | number>> = [
  ['SHA-256 of the shard (integrity check), on the main thread', perRow(sha).toFixed(0), ''],
  [
    'SHA-256 on the hashing worker thread: main-thread time (total wait)',
    `${perRow(workerMain).toFixed(1)} (${perRow(workerTotal).toFixed(0)})`,
    '',
  ],
  [
    'SHA-256 by `crypto.subtle.digest`: main-thread time, the input copy (total wait)',
    `${perRow(subtleMain).toFixed(1)} (${perRow(subtleTotal).toFixed(0)})`,
    '',
  ],
  [
    `Arrow parse, zstd, buffers raw only when compression does not shrink them (apache-arrow's rule; ${(arrowRule.m.bytes / n).toFixed(1)} bytes/position)`,
    perRow(parseArrowRule).toFixed(0),
    '',
  ],
  [
    `Arrow parse, zstd, buffers raw when compression saves < ${MIN_SAVINGS * 100}% (${(m.bytes / n).toFixed(1)} bytes/position)`,
    perRow(parse).toFixed(0),
    '',
  ],
  ['native decode, portable path (field by field), 1 thread', perRow(decodePortable).toFixed(0), ''],
  ['native decode, SIMD path, 1 thread', perRow(decode1).toFixed(0), ''],
  [`native decode, SIMD path, ${os.availableParallelism()} threads`, perRow(decode2).toFixed(0), ''],
  ['whole read of one shard, recycled buffers (`reuse`)', perRow(readReuse).toFixed(0), rate(readReuse)],
  ['whole read of one shard, fresh arrays', perRow(readFresh).toFixed(0), rate(readFresh)],
  [
    `whole read of ${SHARDS} shards, \`reuse\`, read and SHA-256 on the main thread: best (median) of ${MANY_REPS} epochs`,
    `${perRow(readManyMain!.best / SHARDS).toFixed(0)} (${perRow(readManyMain!.median / SHARDS).toFixed(0)})`,
    `${rate(readManyMain!.best, SHARDS * n)} (${rate(readManyMain!.median, SHARDS * n)}) positions/s`,
  ],
  [
    `whole read of ${SHARDS} shards, \`reuse\`, shard files read and hashed on the worker thread (overlapping the decoding): best (median) of ${MANY_REPS} epochs`,
    `${perRow(readManyWorker!.best / SHARDS).toFixed(0)} (${perRow(readManyWorker!.median / SHARDS).toFixed(0)})`,
    `${rate(readManyWorker!.best, SHARDS * n)} (${rate(readManyWorker!.median, SHARDS * n)}) positions/s`,
  ],
  ['shard file read into an already mapped buffer', perRow(intoMapped).toFixed(0), `${MBps(intoMapped)} MB/s`],
  ['shard file read into a fresh buffer (`fs.readFile`)', perRow(fresh).toFixed(0), `${MBps(fresh)} MB/s`],
];
const body = [
  `Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}. Command: \`npx tsx bench/cache-read.ts --record\``,
  '',
  `Packed + zstd shards of ${n} positions at V = ${V}, k = ${k} (${(m.bytes / m.rows).toFixed(1)} bytes/position), best of ${REPS}; GOMP_SPINCOUNT ${native.openmp.spinCount ?? `${process.env.GOMP_SPINCOUNT ?? 'default'} (environment)`}.`,
  '',
  table(['step', 'ns per position', 'rate'], steps),
].join('\n');
console.log(body);
if (values.record) recordSection('cache read', body);
