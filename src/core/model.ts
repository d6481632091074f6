// The student/teacher model family shared by the engine, the trainer, checkpoints and ONNX export:
// a Llama-style decoder. Shapes: V vocab, d = dModel, h = nHeads, g = nKvHeads, hd = d / h, f = ffnDim.
import { z } from 'zod';
import { DistillError } from './errors.js';

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
  })
  .strict();

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/** Parses and checks a model config; errors say which field is wrong and why. */
export function parseModelConfig(raw: unknown, source = 'model config'): ModelConfig {
  const res = ModelConfigSchema.safeParse(raw);
  if (!res.success) {
    const issues = res.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new DistillError('E_CONFIG', `invalid ${source}`, { hint: issues, subject: source });
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
  return c;
}

export const headDim = (c: ModelConfig): number => c.dModel / c.nHeads;

/**
 * Every weight tensor, in canonical order (the order of checkpoints and of the flat parameter buffer).
 * Linear layers follow the PyTorch convention y = x · Wᵀ with W stored [out, in], row-major.
 * RoPE rotates pairs (i, i + hd/2) of each head ("rotate half", as Hugging Face Llama).
 * The LM head is `lm_head` [V, d], or `embed` when tieEmbeddings is true.
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
      [`${p}w1`, [c.ffnDim, c.dModel]], // gate
      [`${p}w3`, [c.ffnDim, c.dModel]], // up
      [`${p}w2`, [c.dModel, c.ffnDim]], // down
    );
  }
  out.push(['norm', [c.dModel]]);
  if (!c.tieEmbeddings) out.push(['lm_head', [c.vocabSize, c.dModel]]);
  return out;
}

export function parameterCount(c: ModelConfig): number {
  return weightShapes(c).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
}
