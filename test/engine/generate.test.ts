// generate(): the request checks, stop-token padding, determinism per seed, and resuming a generation from the
// saved sampler state with the tokens so far as the prompt.
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { parseModelConfig } from '../../src/core/model.js';
import { createEngine, generate, initParams, Rng, Sampler, type GenerateRequest } from '../../src/engine/index.js';

const config = parseModelConfig({
  vocabSize: 13,
  dModel: 16,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 24,
  contextLength: 24,
});
const params = initParams(config, 3, { std: 0.3 });

function prompts(nSeq: number, promptLen: number, seed = 1): Uint32Array {
  const rng = new Rng(seed);
  return Uint32Array.from({ length: nSeq * promptLen }, () => rng.nextU32() % config.vocabSize);
}

function request(over: Partial<GenerateRequest> = {}): GenerateRequest {
  return { prompts: prompts(3, 5), nSeq: 3, promptLen: 5, maxNewTokens: 8, sampling: { temperature: 1 }, ...over };
}

describe('generate', () => {
  const engine = createEngine(config);

  it('keeps the prompts and gives the same tokens for the same seed', () => {
    const a = generate(engine, params, request(), new Sampler(9));
    const b = generate(engine, params, request(), new Sampler(9));
    expect(a.tokens).toEqual(b.tokens);
    expect(Array.from(a.generated)).toEqual([8, 8, 8]);
    const p = request().prompts;
    for (let s = 0; s < 3; s++) expect(a.tokens.subarray(s * 13, s * 13 + 5)).toEqual(p.subarray(s * 5, s * 5 + 5));
    const c = generate(engine, params, request(), new Sampler(10));
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('pads after a stop token and counts the tokens sampled', () => {
    const free = generate(engine, params, request({ maxNewTokens: 12 }), new Sampler(4));
    // The first generated id of sequence 0 as the stop token: it stops at once.
    const stop = free.tokens[5] ?? 0;
    const r = generate(engine, params, request({ maxNewTokens: 12, stopToken: stop }), new Sampler(4));
    expect(r.generated[0]).toBe(1);
    expect(Array.from(r.tokens.subarray(5, 17))).toEqual(new Array<number>(12).fill(stop));
    for (let s = 0; s < 3; s++) {
      const row = Array.from(r.tokens.subarray(s * 17 + 5, s * 17 + 17));
      const n = r.generated[s] ?? 0;
      expect(row.slice(n).every((id) => id === stop)).toBe(true);
      expect(row.slice(0, n - 1).includes(stop)).toBe(false);
    }
  });

  it('resumes: the tokens so far as the prompt and the saved sampler continue the same sequences', () => {
    const whole = generate(engine, params, request({ maxNewTokens: 10 }), new Sampler(21), { mode: 'recompute' });
    const s = new Sampler(21);
    const first = generate(engine, params, request({ maxNewTokens: 4 }), s, { mode: 'recompute' });
    const saved = JSON.stringify(s.state());
    const rest = generate(
      engine,
      params,
      request({ prompts: first.tokens, promptLen: 9, maxNewTokens: 6 }),
      Sampler.restore(JSON.parse(saved) as ReturnType<Sampler['state']>),
      { mode: 'recompute' },
    );
    expect(rest.tokens).toEqual(whole.tokens);
  });

  it('is greedy at temperature 0: each id is the argmax of its logits (ties to the lower id)', () => {
    const V = config.vocabSize;
    const seen: Array<[number, Float32Array]> = [];
    const r = generate(engine, params, request({ sampling: { temperature: 0 } }), new Sampler(1), {
      onLogits: (pos, logits) => seen.push([pos, logits.slice()]),
    });
    expect(seen.map(([pos]) => pos)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    for (const [pos, logits] of seen) {
      for (let s = 0; s < 3; s++) {
        const row = Array.from(logits.subarray(s * V, (s + 1) * V));
        expect(r.tokens[s * 13 + pos]).toBe(row.indexOf(Math.max(...row)));
      }
    }
  });

  it('refuses a request that does not fit the context, a bad prompt buffer or bad options', () => {
    const s = new Sampler(1);
    expect(() => generate(engine, params, request({ maxNewTokens: 20 }), s)).toThrow(/do not fit the model context/);
    expect(() => generate(engine, params, request({ nSeq: 2 }), s)).toThrow(DistillError);
    expect(() => generate(engine, params, request({ prompts: new Uint32Array(15).fill(99) }), s)).toThrow(
      /outside the vocabulary/,
    );
    expect(() => generate(engine, params, request({ sampling: { temperature: 1, topP: 0 } }), s)).toThrow(/topP/);
  });
});
