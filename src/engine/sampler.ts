// Seeded next-token sampling: greedy at temperature 0, otherwise softmax(logits / T) cut to the top k and then to
// the smallest top-p nucleus (in that order, as Hugging Face's TopKLogitsWarper then TopPLogitsWarper), drawn by
// inverse CDF from a mulberry32 stream whose whole state is one uint32, so a saved Sampler resumes bit-exactly.
import { at } from '../core/arrays.js';
import { DistillError } from '../core/errors.js';

export interface SamplingOptions {
  /** 0: greedy (argmax, ties to the lower id); > 0: softmax(logits / temperature). */
  temperature: number;
  /** Keep only the k most likely ids (ties to the lower id); absent or 0: all. */
  topK?: number;
  /** Keep the smallest set of most likely ids whose probability reaches p (0 < p ≤ 1); absent or 1: all. */
  topP?: number;
}

/** A Sampler's whole state (JSON-serializable): restore(state()) continues the same stream. */
export interface SamplerState {
  kind: 'mulberry32';
  /** The generator's 32-bit state. */
  state: number;
}

/** Checks sampling options; throws E_CONFIG naming the bad field. */
export function checkSampling(s: SamplingOptions): void {
  const bad = (field: string, expected: string, found: unknown): never => {
    throw new DistillError('E_CONFIG', `invalid sampling option \`${field}\``, {
      expected,
      found: String(found),
      field,
    });
  };
  if (!Number.isFinite(s.temperature) || s.temperature < 0) bad('temperature', 'a finite number ≥ 0', s.temperature);
  if (s.topK !== undefined && (!Number.isInteger(s.topK) || s.topK < 0)) bad('topK', 'an integer ≥ 0', s.topK);
  if (s.topP !== undefined && (!Number.isFinite(s.topP) || s.topP <= 0 || s.topP > 1)) {
    bad('topP', 'a number in (0, 1]', s.topP);
  }
}

export class Sampler {
  private a: number;

  /** A stream seeded by a 32-bit integer (other numbers are reduced modulo 2³²). */
  constructor(seed: number) {
    this.a = seed >>> 0;
  }

  state(): SamplerState {
    return { kind: 'mulberry32', state: this.a };
  }

  static restore(s: SamplerState): Sampler {
    if (s.kind !== 'mulberry32' || !Number.isInteger(s.state) || s.state < 0 || s.state > 0xffffffff) {
      throw new DistillError('E_CONFIG', 'not a saved sampler state', {
        expected: "{ kind: 'mulberry32', state: a uint32 }",
        found: JSON.stringify(s),
      });
    }
    const r = new Sampler(0);
    r.a = s.state;
    return r;
  }

  /** The next uniform number in [0, 1) (mulberry32, as src/core/random.ts). */
  uniform(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /**
   * One id from a row of logits [V]. Greedy (temperature 0) draws no number; every other call draws exactly one,
   * so the stream advances once per sampled token whatever the options.
   */
  sample(logits: ArrayLike<number>, opts: SamplingOptions): number {
    return sampleToken(logits, opts, opts.temperature === 0 ? 0 : this.uniform());
  }
}

function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let v = 1; v < logits.length; v++) if (at(logits, v) > at(logits, best)) best = v;
  return best;
}

/**
 * The kept ids (most likely first, ties to the lower id) and their probabilities renormalized over them, for
 * temperature > 0. Without top-k/top-p every id is kept in id order (no sort).
 */
export function samplingDistribution(
  logits: ArrayLike<number>,
  opts: SamplingOptions,
): { ids: Int32Array; probs: Float64Array } {
  const V = logits.length;
  const inv = 1 / opts.temperature;
  let mx = -Infinity;
  for (let v = 0; v < V; v++) mx = Math.max(mx, at(logits, v) * inv);
  const p = new Float64Array(V);
  let z = 0;
  for (let v = 0; v < V; v++) z += p[v] = Math.exp(at(logits, v) * inv - mx);
  const k = opts.topK && opts.topK < V ? opts.topK : V;
  const topP = opts.topP ?? 1;
  let ids: Int32Array;
  if (k === V && topP >= 1) ids = Int32Array.from({ length: V }, (_, i) => i);
  else {
    ids = Int32Array.from({ length: V }, (_, i) => i).sort((x, y) => at(p, y) - at(p, x) || x - y);
    ids = ids.subarray(0, k);
    if (topP < 1) {
      let zk = 0;
      for (const v of ids) zk += at(p, v);
      let cum = 0,
        n = 0;
      while (n < ids.length) {
        cum += at(p, at(ids, n)) / zk;
        n++;
        if (cum >= topP) break;
      }
      ids = ids.subarray(0, Math.max(n, 1));
    }
    z = 0;
    for (const v of ids) z += at(p, v);
  }
  const probs = Float64Array.from(ids, (v) => at(p, v) / z);
  return { ids, probs };
}

/** The id for a uniform draw u ∈ [0, 1) (ignored when greedy): the inverse CDF of samplingDistribution. */
export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, u: number): number {
  if (opts.temperature === 0) return argmax(logits);
  const { ids, probs } = samplingDistribution(logits, opts);
  let cum = 0;
  for (let i = 0; i < ids.length; i++) {
    cum += at(probs, i);
    if (u < cum) return at(ids, i);
  }
  // Rounding left the cumulative sum a hair under 1: the last kept id.
  return at(ids, ids.length - 1);
}
