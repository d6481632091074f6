// Logit-cache benchmark: bytes/position, write and read positions/s, and fidelity (mean KL of the
// decoded vs the exact top-k distribution) per encoding, for k ∈ {16, 64, 128} × V ∈ {256, 32000, 128256}
// on Zipf-like synthetic teacher outputs. Baselines measured in the same run: the naive encoding
// (uint32 ids + float32 logp, uncompressed) for size and speed, and a plain memcpy of the same shard bytes.
// Run: npx tsx bench/cache.ts [--positions N] [--quick] [--record]  (--record rewrites `## cache` in docs/benchmarks.md)
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mulberry32 } from '../src/core/random.js';
import { openCache, openCacheWriter, type BodyCompression, type CacheInputs, type CacheRows, type LogpEncoding } from '../src/store/index.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const posArg = args.indexOf('--positions');
const POSITIONS = posArg >= 0 ? Number(args[posArg + 1]) : quick ? 4096 : 8192;
const REPS = 3;
const T = 256;
const Ks = quick ? [64] : [16, 64, 128];
const Vs = quick ? [128256] : [256, 32000, 128256];
const LOGPS: LogpEncoding[] = ['float32', 'float16', 'uint8'];
const COMPRESSIONS: BodyCompression[] = ['none', 'zstd', 'lz4'];

function rng(seed: number): () => number {
  return mulberry32(seed);
}

/**
 * Zipf-like teacher outputs: per position, logits z_r = −s·log(r) + noise over a candidate list, where
 * the candidates (token ids) are drawn ∝ 1/(id + 10) (BPE vocabularies are roughly frequency-ordered);
 * log-probabilities are normalized over the full V (the V − k tokens outside the top-k share the tail).
 */
function synth(n: number, k: number, V: number, seed: number): CacheRows {
  const r = rng(seed);
  const rows: CacheRows = { seq: new Uint32Array(n), pos: new Uint32Array(n), ids: new Uint32Array(n * k), logp: new Float32Array(n * k), tail: new Float32Array(n) };
  const logH = Math.log(V + 10) - Math.log(10);
  const z = new Float64Array(k);
  const used = new Set<number>();
  for (let i = 0; i < n; i++) {
    rows.seq[i] = Math.floor(i / T);
    rows.pos[i] = i % T;
    used.clear();
    const s = 0.8 + 0.8 * r(); // per-position sharpness
    for (let j = 0; j < k; j++) {
      let id: number;
      do id = Math.min(V - 1, Math.floor(10 * Math.exp(r() * logH) - 10));
      while (used.has(id) && used.size < V);
      used.add(id);
      rows.ids[i * k + j] = id;
      z[j] = -s * Math.log(j + 1) + 0.3 * (r() - 0.5);
    }
    z.sort().reverse();
    // The rest of the vocabulary continues the Zipf law: mass of ranks k+1..V ≈ ∫ x^−s over [k+½, V+½].
    const a = k + 0.5;
    const b = V + 0.5;
    const tailMass = V <= k ? 0 : Math.abs(s - 1) < 1e-6 ? Math.log(b / a) : (b ** (1 - s) - a ** (1 - s)) / (1 - s);
    let total = tailMass;
    for (let j = 0; j < k; j++) total += Math.exp(z[j]!);
    const lt = Math.log(total);
    for (let j = 0; j < k; j++) rows.logp[i * k + j] = z[j]! - lt;
    rows.tail[i] = V > k ? Math.log(tailMass) - lt : -Infinity;
  }
  return rows;
}

/** Mean over positions of KL(p ‖ q), p and q the exact and decoded top-k renormalized. */
function meanKl(exact: Float32Array, dec: Float32Array, n: number, k: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let zp = 0;
    let zq = 0;
    for (let j = 0; j < k; j++) {
      zp += Math.exp(exact[o + j]!);
      zq += Math.exp(dec[o + j]!);
    }
    const lzp = Math.log(zp);
    const lzq = Math.log(zq);
    let kl = 0;
    for (let j = 0; j < k; j++) {
      const lp = exact[o + j]! - lzp;
      kl += Math.exp(lp) * (lp - (dec[o + j]! - lzq));
    }
    sum += kl;
  }
  return sum / n;
}

interface Row {
  V: number;
  k: number;
  enc: string;
  bpp: number;
  sizeRatio: number;
  writePps: number;
  readPps: number;
  readRatio: number;
  memcpyPps: number;
  kl: number | null;
}

async function runOne(dir: string, rows: CacheRows, n: number, V: number, k: number, logp: LogpEncoding, compression: BodyCompression) {
  const ids = V <= 65536 ? 'uint16' : 'uint32';
  const inputs: CacheInputs = {
    teacher: { name: 'synthetic-zipf', sha256: 'a'.repeat(64) },
    tokenizer: { name: 'synthetic', sha256: 'b'.repeat(64) },
    dataset: { sha256: 'c'.repeat(64), sequences: n / T, seqLen: T },
    vocabSize: V,
    k,
    temperature: 1,
    encodings: { ids: logp === 'float32' && compression === 'none' && ids === 'uint32' ? 'uint32' : ids, logp, compression },
  };
  return measure(dir, rows, n, k, inputs);
}

async function measure(dir: string, rows: CacheRows, n: number, k: number, inputs: CacheInputs) {
  await fsp.rm(dir, { recursive: true, force: true });
  const t0 = performance.now();
  const w = await openCacheWriter({ uri: dir, inputs, numShards: 1 });
  await w.writeShard(0, [rows]);
  const m = await w.finalize();
  const writeS = (performance.now() - t0) / 1000;
  // Read: fetch + SHA-256 + Arrow parse + decode to uint32/float32, the trainer's path. Best of REPS:
  // on a shared machine the minimum is the least disturbed run.
  let readS = Infinity;
  let decoded: Float32Array | undefined;
  for (let rep = 0; rep < REPS; rep++) {
    const t1 = performance.now();
    const r = await openCache(dir);
    const parts: Float32Array[] = [];
    for await (const b of r.batches({ seed: 0, epoch: 0, maxRows: 1 << 20 })) parts.push(b.logp);
    readS = Math.min(readS, (performance.now() - t1) / 1000);
    if (!decoded) {
      decoded = new Float32Array(n * k);
      let o = 0;
      for (const p of parts) {
        decoded.set(p, o);
        o += p.length;
      }
    }
  }
  // memcpy baseline: one in-memory copy of the same shard bytes (best of REPS × 2).
  const bytes = await fsp.readFile(path.join(dir, m.shards[0]!.key));
  let copyS = Infinity;
  for (let rep = 0; rep < REPS * 2; rep++) {
    const t2 = performance.now();
    Buffer.from(bytes);
    copyS = Math.min(copyS, (performance.now() - t2) / 1000);
  }
  return { bpp: m.bytes / m.rows, writePps: n / writeS, readPps: n / readS, memcpyPps: n / copyS, decoded: decoded! };
}

const fmt = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`);

async function main() {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'distillery-bench-cache-'));
  const out: Row[] = [];
  const started = performance.now();
  for (const V of Vs) {
    for (const k of Ks) {
      if (k > V) continue;
      const n = Math.max(T, Math.floor(POSITIONS / T) * T);
      const rows = synth(n, k, V, V + k);
      // Baseline: naive uint32 ids + float32 logp, uncompressed.
      const naiveInputs: CacheInputs = {
        teacher: { name: 'synthetic-zipf', sha256: 'a'.repeat(64) },
        tokenizer: { name: 'synthetic', sha256: 'b'.repeat(64) },
        dataset: { sha256: 'c'.repeat(64), sequences: n / T, seqLen: T },
        vocabSize: V,
        k,
        temperature: 1,
        encodings: { ids: 'uint32', logp: 'float32', compression: 'none' },
      };
      const naive = await measure(path.join(base, 'naive'), rows, n, k, naiveInputs);
      out.push({ V, k, enc: 'naive u32+f32 (baseline)', bpp: naive.bpp, sizeRatio: 1, writePps: naive.writePps, readPps: naive.readPps, readRatio: naive.readPps / naive.memcpyPps, memcpyPps: naive.memcpyPps, kl: 0 });
      for (const logp of LOGPS) {
        for (const c of COMPRESSIONS) {
          const res = await runOne(path.join(base, `${logp}-${c}`), rows, n, V, k, logp, c);
          const kl = logp === 'float32' ? 0 : meanKl(rows.logp, res.decoded, n, k);
          out.push({ V, k, enc: `${V <= 65536 ? 'u16' : 'u32'}+${logp}+${c}`, bpp: res.bpp, sizeRatio: res.bpp / naive.bpp, writePps: res.writePps, readPps: res.readPps, readRatio: res.readPps / res.memcpyPps, memcpyPps: res.memcpyPps, kl });
        }
      }
      process.stderr.write(`V=${V} k=${k} done (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
    }
  }
  await fsp.rm(base, { recursive: true, force: true });
  const lines = [
    '| V | k | encoding | bytes/pos | size vs naive | write pos/s | read pos/s | read speed ÷ memcpy speed (same bytes) | mean KL (nats) |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|',
    ...out.map((r) => `| ${r.V} | ${r.k} | ${r.enc} | ${r.bpp.toFixed(1)} | ${r.sizeRatio.toFixed(2)}× | ${fmt(r.writePps)} | ${fmt(r.readPps)} | ${r.readRatio.toFixed(2)}× | ${r.kl === null ? '' : r.kl === 0 ? '0' : r.kl.toExponential(1)} |`),
  ];
  const head = `Machine: ${os.cpus()[0]?.model}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)} at the end. Date: ${new Date().toISOString().slice(0, 10)}.\nCommand: \`npx tsx bench/cache.ts ${args.join(' ')}\` (${Math.floor(POSITIONS / T) * T} positions per run, one shard, local disk).`;
  console.log(head);
  console.log(lines.join('\n'));
  if (args.includes('--record')) await record(`${head}\n\n${lines.join('\n')}\n`);
}

/** Replaces (or appends) this benchmark's own section of docs/benchmarks.md, leaving the others alone. */
async function record(body: string): Promise<void> {
  const file = path.resolve('docs/benchmarks.md');
  let doc = await fsp.readFile(file, 'utf8').catch(() => '# Benchmarks\n');
  const start = doc.search(/^## cache\s*$/m);
  const section = `## cache\n\n${body}`;
  if (start < 0) doc = `${doc.trimEnd()}\n\n${section}`;
  else {
    const rest = doc.slice(start + 1);
    const next = rest.search(/^## /m);
    doc = doc.slice(0, start) + section + (next < 0 ? '' : `\n${rest.slice(next)}`);
  }
  await fsp.writeFile(file, doc);
}

await main();
