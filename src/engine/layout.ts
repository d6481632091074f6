// Flat parameter layout of the engine: every tensor of weightShapes(config), in canonical order, with its
// offset (in floats) into the one Float32Array that holds parameters (and, with the same layout, gradients).
import { weightShapes, type ModelConfig } from '../core/model.js';
import type { ParamView } from './api.js';

export function engineLayout(config: ModelConfig): ParamView[] {
  let offset = 0;
  return weightShapes(config).map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const view = { name, shape, offset, size };
    offset += size;
    return view;
  });
}

export function layoutSize(layout: ParamView[]): number {
  const last = layout[layout.length - 1];
  return last ? last.offset + last.size : 0;
}

/** Name → view, for code that addresses tensors by name (`layers.0.wq`, `norm`, …). */
export function layoutIndex(layout: ParamView[]): Map<string, ParamView> {
  return new Map(layout.map((v) => [v.name, v]));
}

/** The name of the tensor that the LM head reads: `lm_head`, or `embed` when embeddings are tied. */
export function lmHeadName(config: ModelConfig): string {
  return config.tieEmbeddings ? 'embed' : 'lm_head';
}
