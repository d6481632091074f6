// Synthetic teacher outputs for cache tests: Zipf-like top-k per position, normalized over V.
import { allocRows } from '../../src/store/format/rows.js';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DistillError } from '../../src/core/errors.js';
import { mulberry32 } from '../../src/core/random.js';
import type { CacheInputs, CacheRows } from '../../src/store/index.js';

export function tmpDir(tag = 'cache'): string {
  return mkdtempSync(path.join(os.tmpdir(), `distillery-${tag}-`));
}

export const SHA = (c: string) => c.repeat(64).slice(0, 64);

export function inputs(over: Partial<CacheInputs> & { seqLen?: number; sequences?: number } = {}): CacheInputs {
  const { seqLen = 8, sequences = 12, ...rest } = over;
  return {
    teacher: { name: 'tiny.onnx', sha256: SHA('a') },
    tokenizer: { name: 'bytes', sha256: SHA('b') },
    dataset: { sha256: SHA('c'), sequences, seqLen },
    vocabSize: 101,
    k: 5,
    temperature: 1,
    encodings: { ids: 'uint16', logp: 'float32', compression: 'none' },
    ...rest,
  };
}

/** A small deterministic PRNG so fixtures never depend on Math.random. */
export function rng(seed: number): () => number {
  return mulberry32(seed);
}

/** Rows for sequences [s0, s1) with T positions each; top-k sorted by probability, distinct ids. */
export function synthRows(s0: number, s1: number, T: number, k: number, V: number, seed = 1, samples = 0): CacheRows {
  const n = (s1 - s0) * T;
  const r = rng(seed * 7919 + s0);
  const rows: CacheRows = allocRows(n, k, 0);
  if (samples) {
    rows.samples = new Uint32Array(n * samples);
    rows.sampleCounts = new Uint16Array(n * samples);
  }
  const w = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    rows.seq[i] = s0 + Math.floor(i / T);
    rows.pos[i] = i % T;
    const used = new Set<number>();
    let total = 0;
    for (let j = 0; j < k; j++) {
      let id: number;
      do id = Math.floor(r() * V);
      while (used.has(id));
      used.add(id);
      rows.ids[i * k + j] = id;
      w[j] = (1 / (j + 1) ** 1.1) * (0.5 + r());
      total += w[j]!;
    }
    w.sort().reverse();
    const mass = 0.6 + 0.39 * r();
    for (let j = 0; j < k; j++) rows.logp[i * k + j] = Math.log((w[j]! / total) * mass);
    rows.tail[i] = Math.log(1 - mass);
    for (let j = 0; j < samples; j++) {
      rows.samples![i * samples + j] = rows.ids[i * k + (j % k)]!;
      rows.sampleCounts![i * samples + j] = 1 + (j % 3);
    }
  }
  return rows;
}

/**
 * Zipf-like teacher outputs (the cache benchmark's generator): per position, logits z_r = −s·log(r) + noise
 * with a per-position sharpness s ∈ [0.8, 1.6), over candidate ids drawn ∝ 1/(id + 10) (BPE vocabularies are
 * roughly frequency-ordered); log-probabilities normalized over the full V, the V − k tokens outside the top-k
 * continuing the Zipf law in the tail.
 */
export function zipfRows(n: number, k: number, V: number, seed: number, T = 256): CacheRows {
  const r = rng(seed);
  const rows: CacheRows = allocRows(n, k, 0);
  const logH = Math.log(V + 10) - Math.log(10);
  const z = new Float64Array(k);
  const used = new Set<number>();
  for (let i = 0; i < n; i++) {
    rows.seq[i] = Math.floor(i / T);
    rows.pos[i] = i % T;
    used.clear();
    const s = 0.8 + 0.8 * r();
    for (let j = 0; j < k; j++) {
      let id: number;
      do id = Math.min(V - 1, Math.floor(10 * Math.exp(r() * logH) - 10));
      while (used.has(id) && used.size < V);
      used.add(id);
      rows.ids[i * k + j] = id;
      z[j] = -s * Math.log(j + 1) + 0.3 * (r() - 0.5);
    }
    z.sort().reverse();
    // Mass of ranks k+1..V ≈ ∫ x^−s over [k+½, V+½].
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

/**
 * Mean over positions of KL(p ‖ q), p and q the exact and decoded top-k distributions renormalized, entries
 * matched by token id (a decoder may order tied entries differently). An id missing from the decoded row is a
 * test failure, reported as an infinite KL.
 */
export function meanTopKKl(
  exact: { ids: Uint32Array; logp: Float32Array },
  dec: { ids: Uint32Array; logp: Float32Array },
  n: number,
  k: number,
): number {
  let sum = 0;
  const at = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const o = i * k;
    at.clear();
    let zp = 0;
    let zq = 0;
    for (let j = 0; j < k; j++) {
      at.set(dec.ids[o + j]!, dec.logp[o + j]!);
      zp += Math.exp(exact.logp[o + j]!);
      zq += Math.exp(dec.logp[o + j]!);
    }
    const lzp = Math.log(zp);
    const lzq = Math.log(zq);
    let kl = 0;
    for (let j = 0; j < k; j++) {
      const x = exact.logp[o + j]!;
      const y = at.get(exact.ids[o + j]!);
      if (y === undefined) return Infinity;
      if (x !== -Infinity) kl += Math.exp(x - lzp) * (x - lzp - (y - lzq));
    }
    sum += kl;
  }
  return sum / n;
}

/** Splits rows into chunks of `size` positions (as a teacher hands them over). */
export function* chunks(rows: CacheRows, size: number, k: number): Generator<CacheRows> {
  const n = rows.seq.length;
  const s = rows.samples ? rows.samples.length / n : 0;
  for (let a = 0; a < n; a += size) {
    const b = Math.min(n, a + size);
    yield {
      seq: rows.seq.subarray(a, b),
      pos: rows.pos.subarray(a, b),
      ids: rows.ids.subarray(a * k, b * k),
      logp: rows.logp.subarray(a * k, b * k),
      tail: rows.tail.subarray(a, b),
      ...(rows.samples
        ? { samples: rows.samples.subarray(a * s, b * s), sampleCounts: rows.sampleCounts!.subarray(a * s, b * s) }
        : {}),
    };
  }
}

/** Rows [a, b) as views (samples omitted). */
export function slice(rows: CacheRows, a: number, b: number, k: number): CacheRows {
  return {
    seq: rows.seq.subarray(a, b),
    pos: rows.pos.subarray(a, b),
    ids: rows.ids.subarray(a * k, b * k),
    logp: rows.logp.subarray(a * k, b * k),
    tail: rows.tail.subarray(a, b),
  };
}

/** Cheap incompressible rows for size-driven tests (ids random, not distinct; logp descending). */
export function noiseRows(s0: number, s1: number, T: number, k: number, V: number, seed = 1): CacheRows {
  const n = (s1 - s0) * T;
  const r = rng(seed);
  const rows: CacheRows = allocRows(n, k, 0);
  for (let i = 0; i < n; i++) {
    rows.seq[i] = s0 + Math.floor(i / T);
    rows.pos[i] = i % T;
    rows.tail[i] = -3;
    let x = -1 - r();
    for (let j = 0; j < k; j++) {
      rows.ids[i * k + j] = Math.floor(r() * V);
      rows.logp[i * k + j] = x;
      x -= r() * 0.1;
    }
  }
  return rows;
}

/**
 * Awaits a promise that must reject with a DistillError, and returns that error. No vitest import here:
 * this file is also loaded by race-worker.ts, a plain child process.
 */
export async function caught(p: Promise<unknown>): Promise<DistillError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DistillError) return err;
    throw new Error(`expected a DistillError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a DistillError, but the promise resolved');
}
