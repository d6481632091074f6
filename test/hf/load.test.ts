// Hugging Face checkpoints in: export → load round trips (F32 exactly, BF16/F16 as rounded), sharded folders
// (model.safetensors.index.json), a layer subset for depth pruning, and errors that name the tensor or key.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { paramLayout } from '../../src/core/model.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/engine/index.js';
import { exportHuggingFace, loadHuggingFace, parseLayerList } from '../../src/engine/hf/index.js';
import { GQA, halfUlp, TIED, tmp, writeCheckpoint } from './helpers/models.js';

async function exported(cfg = GQA, dtype: 'f32' | 'bf16' | 'f16' = 'f32') {
  const ck = writeCheckpoint(cfg, 11);
  const out = tmp('hf');
  await exportHuggingFace({ checkpoint: ck.dir, out, dtype });
  return { ...ck, out };
}

const editJson = (file: string, edit: (j: Record<string, unknown>) => void) => {
  const j = JSON.parse(readFileSync(file, 'utf8'));
  edit(j);
  writeFileSync(file, JSON.stringify(j));
};

describe('loading a Hugging Face Llama checkpoint', () => {
  it('round-trips an export exactly in F32, and as the rounded values in BF16 and F16', async () => {
    for (const cfg of [GQA, TIED]) {
      const { params, out } = await exported(cfg);
      const hf = loadHuggingFace(out);
      expect(hf.config).toEqual(cfg);
      expect(hf.dtypes).toEqual(['F32']);
      expect(Buffer.from(hf.params.buffer).equals(Buffer.from(params.buffer))).toBe(true);
    }
    for (const dtype of ['bf16', 'f16'] as const) {
      const { params, out } = await exported(GQA, dtype);
      const hf = loadHuggingFace(out);
      expect(hf.dtypes).toEqual([dtype.toUpperCase()]);
      let worst = 0;
      const beyond: number[] = [];
      for (let i = 0; i < params.length; i++) {
        const err = Math.abs(hf.params[i]! - params[i]!);
        worst = Math.max(worst, err);
        if (err > halfUlp(params[i]!, dtype)) beyond.push(i);
      }
      expect(beyond).toEqual([]);
      expect(worst).toBeGreaterThan(0);
    }
  });

  it('reads a sharded folder through model.safetensors.index.json', async () => {
    const { params, out } = await exported();
    const st = decodeSafetensors(readFileSync(path.join(out, 'model.safetensors')));
    const names = [...st.tensors.keys()];
    const shards = [names.slice(0, 10), names.slice(10)];
    const weightMap: Record<string, string> = {};
    shards.forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      const tensors = part.map((n) => [n, st.tensors.get(n)!] as [string, { shape: number[]; data: Float32Array }]);
      writeFileSync(path.join(out, file), encodeSafetensors(tensors, { format: 'pt' }));
      for (const n of part) weightMap[n] = file;
    });
    rmSync(path.join(out, 'model.safetensors'));
    writeFileSync(
      path.join(out, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: params.length * 4 }, weight_map: weightMap }),
    );
    const hf = loadHuggingFace(out);
    expect(hf.files).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(Buffer.from(hf.params.buffer).equals(Buffer.from(params.buffer))).toBe(true);
    rmSync(path.join(out, 'model-00002-of-00002.safetensors'));
    expect(() => loadHuggingFace(out)).toThrow(
      /weight shard model-00002-of-00002.safetensors named by the index is missing/,
    );
  });

  it('keeps a subset of layers in the order given, renumbered (depth pruning)', async () => {
    const { params, out } = await exported();
    const hf = loadHuggingFace(out, { layers: parseLayerList('0,2') });
    expect(hf.config).toEqual({ ...GQA, nLayers: 2 });
    expect(hf.layers).toEqual([0, 2]);
    const full = new Map(paramLayout(GQA).map((s) => [s.name, params.subarray(s.offset, s.offset + s.size)]));
    for (const s of paramLayout(hf.config)) {
      const source = s.name.replace(/^layers\.1\./, 'layers.2.');
      expect(Array.from(hf.params.subarray(s.offset, s.offset + s.size))).toEqual(Array.from(full.get(source)!));
    }
    expect(() => loadHuggingFace(out, { layers: [0, 3] })).toThrow(/layer 3 does not exist/);
    expect(() => parseLayerList('0,x')).toThrow(/invalid layer list/);
    expect(() => parseLayerList('1,1')).toThrow(/invalid layer list/);
  });

  it('names the tensor of a shape mismatch, an extra tensor, a missing tensor; refuses other architectures', async () => {
    const { out } = await exported();
    const file = path.join(out, 'model.safetensors');
    const st = decodeSafetensors(readFileSync(file));
    const write = (edit: (m: Map<string, { shape: number[]; data: Float32Array }>) => void) => {
      const m = new Map([...st.tensors].map(([n, t]) => [n, { shape: t.shape, data: t.data as Float32Array }]));
      edit(m);
      writeFileSync(file, encodeSafetensors([...m], { format: 'pt' }));
    };
    write((m) => m.set('model.layers.1.mlp.up_proj.weight', { shape: [24, 40], data: new Float32Array(960) }));
    expect(() => loadHuggingFace(out)).toThrow(
      /tensor model\.layers\.1\.mlp\.up_proj\.weight has the wrong shape: expected \[40, 24\] from config\.json, got F32 \[24, 40\]/,
    );
    write((m) => m.set('model.layers.0.self_attn.q_proj.bias', { shape: [24], data: new Float32Array(24) }));
    expect(() => loadHuggingFace(out)).toThrow(
      /tensor model\.layers\.0\.self_attn\.q_proj\.bias is not part of a Llama model/,
    );
    write((m) => m.delete('model.norm.weight'));
    expect(() => loadHuggingFace(out)).toThrow(/lacks tensor model\.norm\.weight/);
    write(() => {});
    // Older checkpoints carry RoPE buffers; they are recomputed, so they are skipped.
    write((m) => m.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [3], data: new Float32Array(3) }));
    expect(loadHuggingFace(out).config.nLayers).toBe(3);

    const cfg = path.join(out, 'config.json');
    editJson(cfg, (j) => (j.rope_parameters = { rope_type: 'llama3', factor: 8, rope_theta: 500000 }));
    expect(() => loadHuggingFace(out)).toThrow(/RoPE scaling is not supported by the engine/);
    editJson(cfg, (j) => {
      j.rope_parameters = null;
      j.model_type = 'mistral';
      j.architectures = ['MistralForCausalLM'];
    });
    expect(() => loadHuggingFace(out)).toThrow(
      /the architecture is not supported by the engine: expected model_type "llama"/,
    );
    editJson(cfg, (j) => {
      j.model_type = 'llama';
      j.attention_bias = true;
    });
    expect(() => loadHuggingFace(out)).toThrow(/attention_bias is not supported/);
    expect(() => loadHuggingFace(path.join(out, 'nope'))).toThrow(/Hugging Face model folder not found/);
  });
});
