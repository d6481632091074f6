// Where a packed cache read spends its time, per position at V = 128256, k = 64 (Zipf rows, one 65536-row shard,
// packed + zstd): SHA-256 of the shard, Arrow parsing (zstd included), the native decoder on 1 and on 2 threads,
// and the whole read (`reuse` and fresh arrays); plus what first-touching memory costs on this machine (a shard
// read into a fresh buffer vs into one already mapped). Best of REPS for each.
// Run: npx tsx bench/cache-read.ts [--record]   (--record rewrites `## cache read` in docs/benchmarks.md)
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RecordBatchFileReader } from 'apache-arrow';
import { loadNative } from '../src/native/loader.js';
import { ensureCodecs } from '../src/store/codecs.js';
import { decodeBatch } from '../src/store/encode.js';
import { openCache, openCacheWriter, readManifest, sha256Hex } from '../src/store/index.js';
import { inputs, zipfRows } from '../test/store/helpers.js';
import { machineLine, recordSection, table } from './record.js';

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

const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'distillery-bench-cache-read-'));
const w = await openCacheWriter({ uri: dir, inputs: inputs({ vocabSize: V, k, sequences: n / T, seqLen: T, encodings: { ids: 'packed', logp: 'packed', compression: 'zstd' } }), numShards: 1 });
await w.writeShard(0, [zipfRows(n, k, V, V + k, T)]);
const m = await w.finalize();
await ensureCodecs('zstd');
const { layout } = await readManifest(dir);
const file = path.join(dir, m.shards[0]!.key);
const bytes = await fsp.readFile(file);
const perRow = (ms: number) => (ms * 1e6) / n;

const sha = best(() => void sha256Hex(bytes));
const parsed = () => {
  const r = RecordBatchFileReader.from(bytes);
  r.open();
  return [...r];
};
const parse = best(() => void parsed());
const batches = parsed();
const native = loadNative();
const into = { ids: new Uint32Array(n * k), logp: new Float32Array(n * k) };
const decodeOn = (threads: number) => {
  native.addon.setNumThreads(threads);
  return best(() => batches.forEach((b) => decodeBatch(b, layout, into)));
};
const decode1 = decodeOn(1);
const decode2 = decodeOn(os.availableParallelism());
const reader = await openCache(dir);
const readAll = (reuse: boolean) => async () => {
  for await (const b of reader.batches({ seed: 0, epoch: 0, reuse, maxRows: 1 << 20 })) void b;
};
const readReuse = await bestAsync(readAll(true));
const readFresh = await bestAsync(readAll(false));
const mapped = new Uint8Array(bytes.length);
const fh = await fsp.open(file, 'r');
const intoMapped = await bestAsync(async () => void (await fh.read(mapped, 0, mapped.length, 0)));
await fh.close();
const fresh = await bestAsync(async () => void (await fsp.readFile(file)));
await fsp.rm(dir, { recursive: true, force: true });

const MBps = (ms: number) => (bytes.length / 1e6 / (ms / 1000)).toFixed(0);
const rows: Array<Array<string | number>> = [
  ['SHA-256 of the shard (integrity check)', perRow(sha).toFixed(0), ''],
  ['Arrow parse, zstd buffers decompressed (WebAssembly)', perRow(parse).toFixed(0), ''],
  ['native decode, 1 thread', perRow(decode1).toFixed(0), ''],
  [`native decode, ${os.availableParallelism()} threads`, perRow(decode2).toFixed(0), ''],
  ['whole read, recycled buffers (`reuse`)', perRow(readReuse).toFixed(0), `${(n / readReuse / 1e3).toFixed(2)} M positions/s`],
  ['whole read, fresh arrays', perRow(readFresh).toFixed(0), `${(n / readFresh / 1e3).toFixed(2)} M positions/s`],
  ['shard file read into an already mapped buffer', perRow(intoMapped).toFixed(0), `${MBps(intoMapped)} MB/s`],
  ['shard file read into a fresh buffer (`fs.readFile`)', perRow(fresh).toFixed(0), `${MBps(fresh)} MB/s`],
];
const body = [
  `Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}. Command: \`npx tsx bench/cache-read.ts --record\``,
  '',
  `One packed + zstd shard of ${n} positions at V = ${V}, k = ${k} (${(m.bytes / m.rows).toFixed(1)} bytes/position), best of ${REPS}.`,
  '',
  table(['step', 'ns per position', 'rate'], rows),
].join('\n');
console.log(body);
if (process.argv.includes('--record')) recordSection('cache read', body);
