// Hugging Face export of mixture-of-experts students as Llama4ForCausalLM: config.json keys as
// Llama4TextConfig names them, state-dict names and layouts of modeling_llama4.py, logits of a float64
// re-implementation of Llama4ForCausalLM on the exported folder equal to the engine's, and the MoE blocks
// Llama 4 cannot compute refused with the reason.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../../src/core/model.js';
import { decodeSafetensors, saveCheckpoint } from '../../src/engine/index.js';
import { exportHuggingFace, loadHuggingFace } from '../../src/engine/hf/index.js';
import { runTeacher } from '../../src/teacher/index.js';
import { corpusDataset, dumpCache } from '../teacher/helpers/cache.js';
import { hfLlama4Logits } from './helpers/hf-llama4.js';
import { engineLogits, GQA, maxAbsDiff, randomParams, tmp } from './helpers/models.js';

const ids = Array.from(Buffer.from('In the beginning God created'));
const readJson = (dir: string, f: string) => JSON.parse(readFileSync(path.join(dir, f), 'utf8'));

/** The dense tests' grouped-KV model with 4 layers. */
const base = { ...GQA, nLayers: 4 };
/** Maverick-like: MoE on layers 1 and 3, a shared expert, top-2, untied. */
const INTERLEAVED = parseModelConfig({
  ...base,
  moe: { experts: 4, activeExperts: 2, sharedExperts: 1, expertFfnDim: 8, every: 2 },
});
/** Scout-like: every layer MoE, top-1, no shared expert (exported as a zero one), tied embeddings. */
const EVERY = parseModelConfig({
  ...base,
  nLayers: 2,
  tieEmbeddings: true,
  moe: { experts: 3, activeExperts: 1, sharedExperts: 0, expertFfnDim: 10, every: 1 },
});

function exported(c: ModelConfig, seed: number): { out: string; params: Float32Array } {
  const dir = tmp('moe');
  const params = randomParams(c, seed);
  saveCheckpoint(dir, { config: c, params });
  const out = tmp('out');
  return { out, params };
}

describe('Hugging Face export of MoE students (Llama4ForCausalLM)', () => {
  it('writes Llama4TextConfig keys that switch off what the engine does not compute, and Llama 4 tensor names', async () => {
    const dir = tmp('moe');
    saveCheckpoint(dir, { config: INTERLEAVED, params: randomParams(INTERLEAVED, 1) });
    const out = tmp('out');
    await exportHuggingFace({ checkpoint: dir, out });
    expect(readJson(out, 'config.json')).toMatchObject({
      architectures: ['Llama4ForCausalLM'],
      model_type: 'llama4_text',
      hidden_size: 24,
      intermediate_size: 8,
      intermediate_size_mlp: 40,
      num_local_experts: 4,
      num_experts_per_tok: 2,
      interleave_moe_layer_step: 2,
      moe_layers: [1, 3],
      no_rope_layers: [1, 1, 1, 1],
      layer_types: ['full_attention', 'full_attention', 'full_attention', 'full_attention'],
      attention_chunk_size: 32,
      use_qk_norm: false,
      attn_temperature_tuning: false,
      num_key_value_heads: 2,
      head_dim: 6,
      tie_word_embeddings: false,
    });
    const st = decodeSafetensors(readFileSync(path.join(out, 'model.safetensors')));
    const shape = (n: string) => st.tensors.get(n)?.shape;
    expect(shape('model.layers.0.feed_forward.gate_proj.weight')).toEqual([40, 24]);
    expect(shape('model.layers.1.feed_forward.router.weight')).toEqual([4, 24]);
    expect(shape('model.layers.1.feed_forward.experts.gate_up_proj')).toEqual([4, 24, 16]);
    expect(shape('model.layers.1.feed_forward.experts.down_proj')).toEqual([4, 8, 24]);
    expect(shape('model.layers.3.feed_forward.shared_expert.down_proj.weight')).toEqual([24, 8]);
    expect(shape('model.layers.2.self_attn.q_proj.weight')).toEqual([24, 24]);
    expect(st.tensors.has('model.layers.1.feed_forward.gate_proj.weight')).toBe(false);
    expect(st.tensors.has('lm_head.weight')).toBe(true);
  });

  for (const [label, cfg] of [
    ['MoE every 2nd layer, shared expert, top-2, untied', INTERLEAVED],
    ['MoE every layer, no shared expert, top-1, tied', EVERY],
  ] as const) {
    it(`Llama4ForCausalLM's forward on the exported folder gives the engine's logits (${label})`, async () => {
      const { out, params } = exported(cfg, 7);
      const dir = tmp('moe');
      saveCheckpoint(dir, { config: cfg, params });
      await exportHuggingFace({ checkpoint: dir, out });
      const T = Math.min(ids.length, cfg.contextLength);
      const hf = hfLlama4Logits(out, ids.slice(0, T));
      const mine = engineLogits(cfg, params, ids.slice(0, T));
      const scale = Math.max(...hf.flatMap((r) => Array.from(r, Math.abs)));
      expect(scale).toBeGreaterThan(0.5);
      expect(maxAbsDiff(hf, mine)).toBeLessThan(1e-4 * scale);
    });
  }

  it('the switched-off Llama 4 features would change the logits, so the comparison sees a config that leaves one on', async () => {
    const dir = tmp('moe');
    const params = randomParams(INTERLEAVED, 3);
    saveCheckpoint(dir, { config: INTERLEAVED, params });
    const out = tmp('out');
    await exportHuggingFace({ checkpoint: dir, out });
    const T = 12;
    const mine = engineLogits(INTERLEAVED, params, ids.slice(0, T));
    const file = path.join(out, 'config.json');
    const config = readJson(out, 'config.json');
    const variants: Array<[string, Record<string, unknown>]> = [
      ['QK norm', { use_qk_norm: true }],
      ['chunked attention', { layer_types: undefined, attention_chunk_size: 4 }],
      ['NoPE layers (Llama4TextConfig default)', { no_rope_layers: undefined, layer_types: undefined }],
    ];
    for (const [what, change] of variants) {
      writeFileSync(file, JSON.stringify({ ...config, ...change }));
      expect(maxAbsDiff(hfLlama4Logits(out, ids.slice(0, T)), mine), what).toBeGreaterThan(1e-2);
    }
    writeFileSync(file, JSON.stringify(config));
    expect(maxAbsDiff(hfLlama4Logits(out, ids.slice(0, T)), mine)).toBeLessThan(1e-3);
  });

  it('refuses the MoE blocks Llama 4 cannot compute, saying why', async () => {
    const moe = { experts: 4, activeExperts: 2, expertFfnDim: 8 };
    for (const [block, why] of [
      [{ ...moe, router: 'softmax' }, /moe\.router "softmax".*sigmoid/],
      [{ ...moe, balance: { kind: 'bias', rate: 0.001 } }, /selection bias.*aux-loss/],
      [{ ...moe, sharedExperts: 2 }, /sharedExperts = 2.*0 or 1/],
    ] as const) {
      const cfg = parseModelConfig({ ...base, moe: block });
      const dir = tmp('moe');
      saveCheckpoint(dir, { config: cfg, params: randomParams(cfg, 1) });
      const err = await exportHuggingFace({ checkpoint: dir, out: tmp('out') }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'E_UNSUPPORTED',
        message: expect.stringMatching(/no Hugging Face architecture/),
      });
      const e = err as { details: { found?: string; hint?: string } };
      expect(`${e.details.found} ${e.details.hint}`).toMatch(why);
    }
  });
});

describe('Hugging Face Llama4ForCausalLM folders in', () => {
  it('reads an exported MoE student back to the same config and bit-identical parameters, and prunes layers', async () => {
    const dir = tmp('moe');
    const params = randomParams(INTERLEAVED, 5);
    saveCheckpoint(dir, { config: INTERLEAVED, params });
    const out = tmp('out');
    await exportHuggingFace({ checkpoint: dir, out });
    const back = loadHuggingFace(out);
    expect(back.config).toEqual(INTERLEAVED);
    expect(Buffer.from(back.params.buffer).equals(Buffer.from(params.buffer))).toBe(true);
    // Layers 0 and 1 (dense, MoE) keep the every-2nd pattern; 1, 2, 3 (MoE, dense, MoE) cannot.
    expect(loadHuggingFace(out, { layers: [0, 1] }).config).toMatchObject({ nLayers: 2, moe: { every: 2 } });
    expect(() => loadHuggingFace(out, { layers: [1, 2, 3] })).toThrow(/the pattern of MoE layers/);
  });

  it('refuses what the engine does not compute: QK norm, layers without RoPE, short chunked attention', async () => {
    const dir = tmp('moe');
    saveCheckpoint(dir, { config: INTERLEAVED, params: randomParams(INTERLEAVED, 5) });
    const out = tmp('out');
    await exportHuggingFace({ checkpoint: dir, out });
    const file = path.join(out, 'config.json');
    const config = readJson(out, 'config.json');
    for (const [change, why] of [
      [{ use_qk_norm: undefined }, /use_qk_norm/],
      [{ no_rope_layers: undefined }, /without RoPE.*layers 3/],
      [{ layer_types: undefined, attention_chunk_size: 8 }, /chunked attention/],
    ] as const) {
      writeFileSync(file, JSON.stringify({ ...config, ...change }));
      expect(() => loadHuggingFace(out)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED' }));
      expect(() => loadHuggingFace(out)).toThrow(why);
    }
  });

  it('runs as a native teacher to the cache of the checkpoint it was exported from', async () => {
    const dir = tmp('moe');
    saveCheckpoint(dir, { config: INTERLEAVED, params: randomParams(INTERLEAVED, 9) });
    const out = tmp('out');
    await exportHuggingFace({ checkpoint: dir, out });
    const data = path.join(tmp('data'), 'd.arrow');
    corpusDataset(data, 4, 24);
    const run = (model: string) =>
      runTeacher({ backend: 'native', model, data, out: tmp('cache'), topK: 5, shards: 1, batchSize: 4 });
    const a = await run(dir);
    const b = await run(out);
    expect(await dumpCache(b.uri)).toEqual(await dumpCache(a.uri));
  });
});
