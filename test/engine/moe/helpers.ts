// Test helpers for the MoE suites: a seeded normal generator and random MoE layer weights in a flat buffer.
import { moeLayerShapes, type MoeConfig } from '../../../src/core/moe.js';
import type { MoeOffsets } from '../../../src/engine/moe/reference.js';

/** mulberry32 + Box–Muller: deterministic normals for test inputs. */
export function normals(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

export interface MoeLayerFixture {
  P: Float64Array;
  off: MoeOffsets;
  tensors: Array<{ name: string; offset: number; size: number }>;
}

/** One MoE layer's tensors laid out as in weightShapes (prefix ''), filled with N(0, std²). */
export function moeLayerFixture(d: number, moe: MoeConfig, seed: number, std = 0.5): MoeLayerFixture {
  const rnd = normals(seed);
  let offset = 0;
  const tensors = moeLayerShapes('', d, moe).map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const t = { name, offset, size };
    offset += size;
    return t;
  });
  const P = Float64Array.from({ length: offset }, () => std * rnd());
  const at = (name: string) => tensors.find((t) => t.name === name)?.offset;
  const router = at('router'),
    gateUp = at('experts_gate_up'),
    down = at('experts_down');
  if (router === undefined || gateUp === undefined || down === undefined) throw new Error('missing MoE tensors');
  const off: MoeOffsets = { router, gateUp, down };
  const opt = {
    routerBias: at('router_bias'),
    sharedW1: at('shared_w1'),
    sharedW3: at('shared_w3'),
    sharedW2: at('shared_w2'),
  };
  for (const [k, v] of Object.entries(opt)) if (v !== undefined) (off as unknown as Record<string, number>)[k] = v;
  return { P, off, tensors };
}
