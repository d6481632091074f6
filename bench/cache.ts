// Logit-cache benchmark: bytes/position, write and read positions/s, and fidelity (mean KL of the decoded vs the
// exact top-k distribution) per encoding, for k ∈ {16, 64, 128} × V ∈ {256, 32000, 128256} on Zipf-like synthetic
// teacher outputs (test/store/helpers.ts zipfRows). Baselines measured in the same run: the naive encoding (uint32
// ids + float32 logp, uncompressed) for size and speed, and a plain memcpy of the same shard bytes.
// Real teacher outputs too: the fixture teacher (fixtures/teacher, V = 257) run by the teacher runner over the
// fixture corpus, its exact top-k (float32) then stored in every encoding.
// Reads are the trainer's path: one reader, recycled buffers (`reuse`), fetch + SHA-256 + Arrow + decode to
// uint32/float32; the first epoch warms the buffers, the best of the next REPS epochs counts.
// Run: npm run build:ts && npx tsx bench/cache.ts [--positions N] [--quick] [--record]
// (--record rewrites `## cache` in docs/benchmarks.md; the teacher runs from the compiled dist/, as for users).
import { existsSync, promises as fsp, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  openCache,
  openCacheWriter,
  type BodyCompression,
  type CacheInputs,
  type CacheRows,
  type IdsEncoding,
  type LogpEncoding,
} from '../src/store/index.js';
import type * as Api from '../src/index.js';
import { allocRows } from '../src/store/format/rows.js';
import { meanTopKKl, zipfRows } from '../test/store/helpers.js';
import { recordSection } from './record.js';
import { benchArgs } from './args.js';

const values = benchArgs(
  import.meta.url,
  {
    positions: { type: 'string' },
    quick: { type: 'boolean', default: false },
    record: { type: 'boolean', default: false },
  },
  ['positions'],
);
const args = process.argv.slice(2);
const quick = values.quick;
const SEQ = 256;
const SHARDS = 4;
const POSITIONS = Math.max(
  SHARDS * SEQ,
  Math.floor((values.positions !== undefined ? Number(values.positions) : quick ? 131072 : 65536) / (SHARDS * SEQ)) *
    SHARDS *
    SEQ,
);
const REPS = 3;
const Ks = quick ? [64] : [16, 64, 128];
const Vs = quick ? [128256] : [256, 32000, 128256];
const ENCODINGS: Array<[LogpEncoding, BodyCompression]> = [
  ['float32', 'none'],
  ['float32', 'zstd'],
  ['float32', 'lz4'],
  ['float16', 'none'],
  ['float16', 'zstd'],
  ['float16', 'lz4'],
  ['uint8', 'none'],
  ['uint8', 'zstd'],
  ['uint8', 'lz4'],
  ['packed', 'none'],
  ['packed', 'zstd'],
  ['packed', 'lz4'],
];

interface Row {
  V: number;
  k: number;
  enc: string;
  bpp: number;
  sizeRatio: number;
  writePps: number;
  readPps: number;
  readVsNaive: number;
  readRatio: number;
  kl: number | null;
}

function inputsFor(
  n: number,
  V: number,
  k: number,
  ids: IdsEncoding,
  logp: LogpEncoding,
  compression: BodyCompression,
  T = SEQ,
): CacheInputs {
  return {
    teacher: { name: 'synthetic-zipf', sha256: 'a'.repeat(64) },
    tokenizer: { name: 'synthetic', sha256: 'b'.repeat(64) },
    dataset: { sha256: 'c'.repeat(64), sequences: n / T, seqLen: T },
    vocabSize: V,
    k,
    temperature: 1,
    encodings: { ids, logp, compression },
  };
}

async function measure(dir: string, rows: CacheRows, n: number, k: number, inputs: CacheInputs, reuse = true) {
  const T = inputs.dataset.seqLen;
  await fsp.rm(dir, { recursive: true, force: true });
  const per = n / SHARDS;
  const part = (s: number): CacheRows => ({
    seq: rows.seq.subarray(s * per, (s + 1) * per),
    pos: rows.pos.subarray(s * per, (s + 1) * per),
    ids: rows.ids.subarray(s * per * k, (s + 1) * per * k),
    logp: rows.logp.subarray(s * per * k, (s + 1) * per * k),
    tail: rows.tail.subarray(s * per, (s + 1) * per),
  });
  const t0 = performance.now();
  const w = await openCacheWriter({ uri: dir, inputs, numShards: SHARDS });
  for (let s = 0; s < SHARDS; s++) await w.writeShard(s, [part(s)]);
  const m = await w.finalize();
  const writeS = (performance.now() - t0) / 1000;
  const r = await openCache(dir);
  const decoded = { ids: new Uint32Array(n * k), logp: new Float32Array(n * k) };
  let readS = Infinity;
  for (let epoch = 0; epoch <= REPS; epoch++) {
    const t1 = performance.now();
    for await (const b of r.batches({ seed: 0, epoch, maxRows: 1 << 20, reuse })) {
      if (epoch === 0) {
        for (let i = 0; i < b.seq.length; i++) {
          const at = b.seq[i]! * T + b.pos[i]!;
          decoded.ids.set(b.ids.subarray(i * k, i * k + k), at * k);
          decoded.logp.set(b.logp.subarray(i * k, i * k + k), at * k);
        }
      }
    }
    if (epoch > 0) readS = Math.min(readS, (performance.now() - t1) / 1000);
  }
  await r.close();
  // memcpy baseline: one in-memory copy of the same shard bytes (best of REPS × 2), into memory already mapped.
  const bytes = await Promise.all(m.shards.map((sh) => fsp.readFile(path.join(dir, sh.key))));
  const into = bytes.map((b) => new Uint8Array(b.length));
  let copyS = Infinity;
  for (let rep = 0; rep < REPS * 2; rep++) {
    const t2 = performance.now();
    bytes.forEach((b, i) => into[i]!.set(b));
    copyS = Math.min(copyS, (performance.now() - t2) / 1000);
  }
  return { bpp: m.bytes / m.rows, writePps: n / writeS, readPps: n / readS, memcpyPps: n / copyS, decoded };
}

const fmt = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`);

/** Every encoding of `rows` against the naive baseline, appended to `out`. */
async function encodings(
  out: Row[],
  base: string,
  label: string,
  rows: CacheRows,
  n: number,
  V: number,
  k: number,
  T: number,
) {
  const naive = await measure(path.join(base, 'naive'), rows, n, k, inputsFor(n, V, k, 'uint32', 'float32', 'none', T));
  out.push({
    V,
    k,
    enc: `${label}naive u32+f32 (baseline)`,
    bpp: naive.bpp,
    sizeRatio: 1,
    writePps: naive.writePps,
    readPps: naive.readPps,
    readVsNaive: 1,
    readRatio: naive.readPps / naive.memcpyPps,
    kl: 0,
  });
  for (const [logp, c] of ENCODINGS) {
    const ids: IdsEncoding = logp === 'packed' ? 'packed' : V <= 65536 ? 'uint16' : 'uint32';
    const inp = inputsFor(n, V, k, ids, logp, c, T);
    const res = await measure(path.join(base, `${logp}-${c}`), rows, n, k, inp);
    const kl = logp === 'float32' ? 0 : meanTopKKl(rows, res.decoded, n, k);
    const name = label + (logp === 'packed' ? `packed+${c}` : `${ids === 'uint16' ? 'u16' : 'u32'}+${logp}+${c}`);
    out.push({
      V,
      k,
      enc: name,
      bpp: res.bpp,
      sizeRatio: res.bpp / naive.bpp,
      writePps: res.writePps,
      readPps: res.readPps,
      readVsNaive: res.readPps / naive.readPps,
      readRatio: res.readPps / res.memcpyPps,
      kl,
    });
    if (!label && logp === 'packed' && c === 'zstd' && V === 128256 && k === 64) {
      // The same read into fresh arrays (no `reuse`): what first-touching memory costs on this machine.
      const fresh = await measure(path.join(base, 'fresh'), rows, n, k, inp, false);
      out.push({
        V,
        k,
        enc: `${name}, fresh arrays`,
        bpp: fresh.bpp,
        sizeRatio: fresh.bpp / naive.bpp,
        writePps: fresh.writePps,
        readPps: fresh.readPps,
        readVsNaive: fresh.readPps / naive.readPps,
        readRatio: fresh.readPps / fresh.memcpyPps,
        kl,
      });
    }
  }
}

/**
 * The fixture teacher's exact top-k (float32, from a cache the teacher runner wrote) over the first `n` positions
 * of the fixture corpus at T = 128, in (seq, pos) order.
 */
async function teacherRows(base: string, n: number, k: number, T: number): Promise<CacheRows> {
  const dist = path.resolve('dist/src/index.js');
  if (!existsSync(dist)) throw new Error('dist/ is missing: run `npm run build:ts` first');
  const api = (await import(dist)) as typeof Api;
  const corpus = path.resolve('fixtures/corpus');
  const data = path.join(base, 'teacher-data', 'tokens.arrow');
  await fsp.mkdir(path.dirname(data), { recursive: true });
  const files = readdirSync(corpus)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) => path.join(corpus, f));
  // Each k prepares the same dataset again into the same folder.
  const prep = await api.prepareDataset({ text: files, tokenizer: 'byte', seqLen: T, out: data, force: true });
  if (prep.train.numSequences * T < n)
    throw new Error(`the fixture corpus holds ${prep.train.numSequences * T} positions, fewer than ${n}`);
  const out = path.join(base, `teacher-cache-${k}`);
  await api.runTeacher({
    model: path.resolve('fixtures/teacher/model.onnx'),
    data,
    out,
    topK: k,
    workers: 1,
    shards: 8,
  });
  const r = await api.openCache(out);
  const rows: CacheRows = allocRows(n, k, 0);
  for await (const b of r.batches({ seed: 0, epoch: 0 })) {
    for (let i = 0; i < b.seq.length; i++) {
      const at = b.seq[i]! * T + b.pos[i]!;
      if (at >= n) continue;
      rows.seq[at] = b.seq[i]!;
      rows.pos[at] = b.pos[i]!;
      rows.tail[at] = b.tail[i]!;
      rows.ids.set(b.ids.subarray(i * k, i * k + k), at * k);
      rows.logp.set(b.logp.subarray(i * k, i * k + k), at * k);
    }
  }
  return rows;
}

async function main() {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'distillery-bench-cache-'));
  const out: Row[] = [];
  const started = performance.now();
  const n = POSITIONS;
  for (const V of Vs) {
    for (const k of Ks) {
      if (k > V) continue;
      await encodings(out, base, '', zipfRows(n, k, V, V + k, SEQ), n, V, k, SEQ);
      process.stderr.write(`V=${V} k=${k} done (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
    }
  }
  // Real teacher outputs: T = 128, the fixture teacher's byte vocabulary (V = 257).
  const TT = 128;
  const nt = Math.floor(Math.min(n, 65536) / (SHARDS * TT)) * SHARDS * TT;
  for (const k of quick ? [32] : [16, 32, 64]) {
    await encodings(out, base, 'fixture teacher: ', await teacherRows(base, nt, k, TT), nt, 257, k, TT);
    process.stderr.write(`fixture teacher k=${k} done (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  }
  await fsp.rm(base, { recursive: true, force: true });
  const lines = [
    '| V | k | encoding | bytes/pos | size vs naive | write pos/s | read pos/s | read vs naive | read speed ÷ memcpy speed (same bytes) | mean KL (nats) |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|',
    ...out.map(
      (r) =>
        `| ${r.V} | ${r.k} | ${r.enc.includes('packed') ? `**${r.enc}**` : r.enc} | ${r.bpp.toFixed(1)} | ${r.sizeRatio.toFixed(2)}× | ${fmt(r.writePps)} | ${fmt(r.readPps)} | ${r.readVsNaive.toFixed(2)}× | ${r.readRatio.toFixed(2)}× | ${r.kl === null ? '' : r.kl === 0 ? '0' : r.kl.toExponential(1)} |`,
    ),
  ];
  const head = `Machine: ${os.cpus()[0]?.model}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)} at the end. Date: ${new Date().toISOString().slice(0, 10)}.\nCommand: \`npm run build:ts && npx tsx bench/cache.ts ${args.join(' ')}\` (synthetic: ${n} positions per run at T = ${SEQ}; fixture teacher: ${nt} positions at T = ${TT}; ${SHARDS} shards, local disk; reads: one reader with recycled buffers, best of ${REPS} epochs after a warm-up epoch).\nThese shards are small (${n / SHARDS} positions each, a quarter of the teacher runner's default), so each epoch's first shard, whose hash cannot overlap any decoding, weighs on the read column; reads of runner-sized shards are in \`## cache read\` (\`npx tsx bench/cache-read.ts\`).`;
  console.log(head);
  console.log(lines.join('\n'));
  if (values.record) recordSection('cache', `${head}\n\n${lines.join('\n')}\n`);
}

await main();
