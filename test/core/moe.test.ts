// The moe block of the model config: defaults, which layers become MoE (Hugging Face Llama 4's convention),
// the canonical tensors of an MoE layer, total vs active parameters, and errors that name the field.
import { describe, expect, it } from 'vitest';
import { activeParameterCount, parameterCount, parseModelConfig, weightShapes } from '../../src/core/model.js';
import { moeLayers } from '../../src/core/moe.js';

const dense = { vocabSize: 257, dModel: 64, nLayers: 4, nHeads: 4, nKvHeads: 2, ffnDim: 128, contextLength: 128 };
const moe = { experts: 8, activeExperts: 1, sharedExperts: 1, expertFfnDim: 64, every: 2 };

describe('moe config', () => {
  it('parses the example with defaults for router and balance', () => {
    const c = parseModelConfig({ ...dense, moe });
    expect(c.moe).toEqual({ ...moe, router: 'sigmoid', balance: { kind: 'aux-loss', coef: 0.01 } });
    expect(parseModelConfig(dense).moe).toBeUndefined();
  });

  it('makes layers every−1, 2·every−1, … MoE (transformers Llama4TextConfig.moe_layers)', () => {
    const m = (every: number) => parseModelConfig({ ...dense, moe: { ...moe, every } }).moe;
    expect(moeLayers(4, m(1))).toEqual([0, 1, 2, 3]);
    expect(moeLayers(4, m(2))).toEqual([1, 3]);
    expect(moeLayers(4, m(3))).toEqual([2]);
    expect(moeLayers(4, m(4))).toEqual([3]);
    expect(moeLayers(4, undefined)).toEqual([]);
  });

  it('lists the MoE tensors in canonical order instead of w1, w3, w2', () => {
    const c = parseModelConfig({ ...dense, moe: { ...moe, balance: { kind: 'bias', rate: 0.001 } } });
    const names = weightShapes(c).map(([n]) => n);
    expect(names.filter((n) => n.startsWith('layers.0.')).slice(-3)).toEqual([
      'layers.0.w1',
      'layers.0.w3',
      'layers.0.w2',
    ]);
    expect(
      weightShapes(c)
        .filter(([n]) => n.startsWith('layers.1.'))
        .slice(5),
    ).toEqual([
      ['layers.1.ffn_norm', [64]],
      ['layers.1.router', [8, 64]],
      ['layers.1.router_bias', [8]],
      ['layers.1.shared_w1', [64, 64]],
      ['layers.1.shared_w3', [64, 64]],
      ['layers.1.shared_w2', [64, 64]],
      ['layers.1.experts_gate_up', [8, 128, 64]],
      ['layers.1.experts_down', [8, 64, 64]],
    ]);
    const noBias = parseModelConfig({ ...dense, moe: { ...moe, sharedExperts: 0 } });
    expect(
      weightShapes(noBias)
        .filter(([n]) => n.startsWith('layers.3.'))
        .map(([n]) => n),
    ).toEqual([
      'layers.3.attn_norm',
      'layers.3.wq',
      'layers.3.wk',
      'layers.3.wv',
      'layers.3.wo',
      'layers.3.ffn_norm',
      'layers.3.router',
      'layers.3.experts_gate_up',
      'layers.3.experts_down',
    ]);
  });

  it('counts total and active parameters', () => {
    const c = parseModelConfig({ ...dense, moe });
    const expert = 3 * 64 * 64;
    const perMoeLayer = 8 * 64 + 9 * expert;
    const perDenseFfn = 3 * 128 * 64;
    expect(parameterCount(c)).toBe(parameterCount(parseModelConfig(dense)) + 2 * (perMoeLayer - perDenseFfn));
    expect(activeParameterCount(c)).toBe(parameterCount(c) - 2 * 7 * expert);
    expect(activeParameterCount(parseModelConfig(dense))).toBe(parameterCount(parseModelConfig(dense)));
  });

  it('refuses bad blocks before any work, naming the field', () => {
    const bad = (m: Record<string, unknown>) => () => parseModelConfig({ ...dense, moe: { ...moe, ...m } }, 'cfg.json');
    expect(bad({ activeExperts: 9 })).toThrow(
      /cfg\.json: moe\.activeExperts must be between 1 and moe\.experts.*got moe\.activeExperts=9/,
    );
    expect(bad({ activeExperts: 0 })).toThrow(/moe\.activeExperts: Too small: expected number to be >=1/);
    expect(bad({ experts: 0 })).toThrow(/moe\.experts: Too small/);
    expect(bad({ expertFfnDim: -3 })).toThrow(/moe\.expertFfnDim: Too small/);
    expect(bad({ sharedExperts: -1 })).toThrow(/moe\.sharedExperts: Too small: expected number to be >=0/);
    expect(bad({ every: 0 })).toThrow(/moe\.every: Too small/);
    expect(bad({ every: 5 })).toThrow(/moe\.every leaves no MoE layer.*got moe\.every=5/);
    expect(bad({ router: 'relu' })).toThrow(/moe\.router: Invalid option: expected one of "sigmoid"\|"softmax"/);
    expect(bad({ balance: { kind: 'capacity' } })).toThrow(/moe\.balance\.kind: Invalid discriminator value/);
    expect(bad({ balance: { kind: 'bias', rate: 0 } })).toThrow(/moe\.balance\.rate: Too small/);
    expect(bad({ balance: { kind: 'aux-loss', coef: -1 } })).toThrow(/moe\.balance\.coef: Too small/);
    expect(bad({ topK: 2 })).toThrow(/moe: Unrecognized key: "topK"/);
    const codeOf = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return 'no error';
    };
    expect(codeOf(bad({ activeExperts: 9 }))).toBe('E_CONFIG');
    expect(codeOf(bad({ every: 0 }))).toBe('E_CONFIG');
  });
});
