// Deterministic parameter initialization: every matrix ~ normal(0, std) from a seeded PRNG
// (splitmix64-seeded xoshiro128**, Box–Muller), every norm weight = 1. Same seed → same bits on any machine.
import { at } from '../core/arrays.js';
import { paramLayout, parameterCount, type ModelConfig } from '../core/model.js';

export interface InitOptions {
  /** Standard deviation of the matrices (default 0.02, as GPT-2/Llama). */
  std?: number;
  /**
   * Scale the output projections (wo, w2; in MoE layers shared_w2, experts_down) by 1/√(2·nLayers) as GPT-2
   * does, so the residual stream's variance does not grow with depth (default true).
   */
  scaleResidual?: boolean;
}

/** A small seeded PRNG: 32-bit state words from splitmix64 of the seed, xoshiro128** steps. */
export class Rng {
  private s: Uint32Array;
  private spare: number | undefined;

  constructor(seed: number) {
    let x = BigInt.asUintN(64, BigInt(Math.floor(seed)));
    const words: number[] = [];
    for (let i = 0; i < 2; i++) {
      x = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n);
      let z = x;
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
      z = z ^ (z >> 31n);
      words.push(Number(z & 0xffffffffn), Number(z >> 32n));
    }
    this.s = Uint32Array.from(words);
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  /** Uniform 32-bit integer. */
  nextU32(): number {
    const s = this.s;
    let s0 = at(s, 0),
      s1 = at(s, 1),
      s2 = at(s, 2),
      s3 = at(s, 3);
    const r = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 = (s2 ^ s0) >>> 0;
    s3 = (s3 ^ s1) >>> 0;
    s1 = (s1 ^ s2) >>> 0;
    s0 = (s0 ^ s3) >>> 0;
    s2 = (s2 ^ t) >>> 0;
    s3 = rotl(s3, 11);
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return r;
  }

  /** Uniform in (0, 1). */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** Standard normal (Box–Muller, both values used). */
  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    const u1 = this.uniform(),
      u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function initParams(config: ModelConfig, seed: number, options: InitOptions = {}): Float32Array {
  const std = options.std ?? 0.02;
  const residualScale = options.scaleResidual === false ? 1 : 1 / Math.sqrt(2 * config.nLayers);
  const layout = paramLayout(config);
  const params = new Float32Array(parameterCount(config));
  const rng = new Rng(seed);
  for (const v of layout) {
    const out = params.subarray(v.offset, v.offset + v.size);
    // The MoE selection bias starts at 0 (DeepSeek-V3); every other vector is an RMSNorm weight.
    if (v.shape.length === 1) {
      out.fill(v.name.endsWith('.router_bias') ? 0 : 1);
      continue;
    }
    const s = /\.(wo|w2|shared_w2|experts_down)$/.test(v.name) ? std * residualScale : std;
    for (let i = 0; i < out.length; i++) out[i] = s * rng.normal();
  }
  return params;
}
