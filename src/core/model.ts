// The student/teacher model family shared by the engine, the trainer, checkpoints and ONNX export:
// a Llama-style decoder, optionally with mixture-of-experts FFN layers (src/core/moe.ts), and the one flat
// layout of its weights (parameters, gradients, moments, checkpoints).
// Shapes: V vocab, d = dModel, h = nHeads, g = nKvHeads, hd = d / h, f = ffnDim (dense FFN layers).
import { z } from 'zod';
import { DistillError, invariant } from './errors.js';
import { checkMoeConfig, isMoeLayer, moeActiveFfnParams, moeLayers, moeLayerShapes, MoeConfigSchema } from './moe.js';
import { formatIssues } from './schema.js';

export const ModelConfigSchema = z
  .object({
    vocabSize: z.number().int().min(2),
    dModel: z.number().int().min(1),
    nLayers: z.number().int().min(1),
    nHeads: z.number().int().min(1),
    nKvHeads: z.number().int().min(1),
    ffnDim: z.number().int().min(1),
    contextLength: z.number().int().min(1),
    tieEmbeddings: z.boolean().default(false),
    ropeTheta: z.number().positive().default(10000),
    normEps: z.number().positive().default(1e-5),
    /** Mixture-of-experts FFN layers; without it the model is dense. */
    moe: MoeConfigSchema.optional(),
  })
  .strict();

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/** Parses and checks a model config; errors say which field is wrong and why. */
export function parseModelConfig(raw: unknown, source = 'model config'): ModelConfig {
  const res = ModelConfigSchema.safeParse(raw);
  if (!res.success) {
    throw new DistillError('E_CONFIG', `invalid ${source}`, { hint: formatIssues(res.error.issues), subject: source });
  }
  const c = res.data;
  if (c.dModel % c.nHeads !== 0) {
    throw new DistillError('E_CONFIG', `invalid ${source}: nHeads must divide dModel`, {
      expected: `dModel divisible by nHeads`,
      found: `dModel=${c.dModel}, nHeads=${c.nHeads}`,
      subject: source,
    });
  }
  if (c.nHeads % c.nKvHeads !== 0) {
    throw new DistillError('E_CONFIG', `invalid ${source}: nKvHeads must divide nHeads`, {
      expected: 'nHeads divisible by nKvHeads',
      found: `nHeads=${c.nHeads}, nKvHeads=${c.nKvHeads}`,
      subject: source,
    });
  }
  if ((c.dModel / c.nHeads) % 2 !== 0) {
    throw new DistillError('E_CONFIG', `invalid ${source}: the head dimension must be even for RoPE`, {
      found: `dModel/nHeads=${c.dModel / c.nHeads}`,
      subject: source,
    });
  }
  if (c.moe) checkMoeConfig(c.moe, c.nLayers, source);
  return c;
}

export const headDim = (c: ModelConfig): number => c.dModel / c.nHeads;

/**
 * Every weight tensor, in canonical order (the order of checkpoints and of the flat parameter buffer).
 * Linear layers follow the PyTorch convention y = x · Wᵀ with W stored [out, in], row-major.
 * RoPE rotates pairs (i, i + hd/2) of each head ("rotate half", as Hugging Face Llama).
 * The LM head is `lm_head` [V, d], or `embed` when tieEmbeddings is true.
 * MoE layers (moeLayers) hold the tensors of moeLayerShapes instead of w1, w3, w2.
 */
export function weightShapes(c: ModelConfig): Array<[name: string, shape: number[]]> {
  const hd = headDim(c);
  const out: Array<[string, number[]]> = [['embed', [c.vocabSize, c.dModel]]];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `layers.${l}.`;
    out.push(
      [`${p}attn_norm`, [c.dModel]],
      [`${p}wq`, [c.nHeads * hd, c.dModel]],
      [`${p}wk`, [c.nKvHeads * hd, c.dModel]],
      [`${p}wv`, [c.nKvHeads * hd, c.dModel]],
      [`${p}wo`, [c.dModel, c.nHeads * hd]],
      [`${p}ffn_norm`, [c.dModel]],
    );
    if (c.moe && isMoeLayer(l, c.moe)) out.push(...moeLayerShapes(p, c.dModel, c.moe));
    else {
      out.push(
        [`${p}w1`, [c.ffnDim, c.dModel]], // gate
        [`${p}w3`, [c.ffnDim, c.dModel]], // up
        [`${p}w2`, [c.dModel, c.ffnDim]], // down
      );
    }
  }
  out.push(['norm', [c.dModel]]);
  if (!c.tieEmbeddings) out.push(['lm_head', [c.vocabSize, c.dModel]]);
  return out;
}

export function parameterCount(c: ModelConfig): number {
  return weightShapes(c).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
}

/**
 * Parameters one token uses: every tensor of a dense model; in MoE layers only the router, the shared experts
 * and `activeExperts` routed experts (the selection bias is not counted).
 */
export function activeParameterCount(c: ModelConfig): number {
  const moe = c.moe;
  if (!moe) return parameterCount(c);
  const layers = moeLayers(c.nLayers, moe);
  const moeTotal = moeLayerShapes('', c.dModel, moe).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
  return parameterCount(c) - layers.length * (moeTotal - moeActiveFfnParams(c.dModel, moe));
}

/** Where one weight tensor lives in the flat parameter buffer (gradients and AdamW moments share the layout). */
export interface TensorSlot {
  name: string;
  shape: number[];
  /** Offset (in floats) into the flat buffer. */
  offset: number;
  size: number;
}

/** Every tensor of weightShapes(config), in canonical order, with its offset into the flat buffer. */
export function paramLayout(c: ModelConfig): TensorSlot[] {
  let offset = 0;
  return weightShapes(c).map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const slot = { name, shape, offset, size };
    offset += size;
    return slot;
  });
}

/** The tensor the LM head reads, [V × d]: `lm_head`, or `embed` when embeddings are tied. */
export function lmHeadSlot(c: ModelConfig): TensorSlot {
  const name = c.tieEmbeddings ? 'embed' : 'lm_head';
  const slot = paramLayout(c).find((s) => s.name === name);
  invariant(slot, `weightShapes lists the ${name} tensor`);
  return slot;
}
