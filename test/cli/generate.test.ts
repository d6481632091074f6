// `distill generate` on a small byte-level checkpoint: text prompts and dataset prompts, ids and text under --json,
// the same completion for the same seed, greedy decoding matching the engine's own generate(), and one-line errors
// for a prompt past the context, a folder that is no checkpoint and a tokenizer that does not fit.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/core/model.js';
import { byteTokenizer, openTokenDataset } from '../../src/data/index.js';
import { createEngine, generate, initParams, saveCheckpoint, Sampler } from '../../src/engine/index.js';
import { writeBpeTokenizer } from '../data/helpers/hf-tokenizer.js';
import { distillInProcess } from './in-process.js';
import { prepareArgs, type Fixture } from './fixture.js';

const config = parseModelConfig({
  vocabSize: 257,
  dModel: 40,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 64,
  contextLength: 48,
});
const params = initParams(config, 5, { std: 0.2 });
const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-generate-'));
const ckpt = path.join(dir, 'ckpt');
const data = path.join(dir, 'tokens.arrow');

interface Sample {
  prompt: string;
  completion: string;
  promptIds: number[];
  ids: number[];
  stopped: boolean;
}
interface Out {
  samples: Sample[];
  generatedTokens: number;
  tokenizer: string;
}

async function run(args: string[]): Promise<{ status: number; out: Out; stderr: string; stdout: string }> {
  const r = await distillInProcess(['generate', '--checkpoint', ckpt, ...args]);
  return {
    status: r.status,
    out: (r.status === 0 ? JSON.parse(r.stdout) : {}) as Out,
    stderr: r.stderr,
    stdout: r.stdout,
  };
}

beforeAll(async () => {
  saveCheckpoint(ckpt, { config, params });
  const P = { data } as Fixture;
  const r = await distillInProcess(prepareArgs(P));
  expect(r.status, r.stderr).toBe(0);
}, 60_000);

describe('distill generate', () => {
  it('completes a text prompt: byte ids, decoded text, the same for the same seed', async () => {
    const a = await run(['--prompt', 'And Jonah', '--max-new-tokens', '12', '--seed', '3', '--json']);
    expect(a.status, a.stderr).toBe(0);
    const s = a.out.samples[0];
    expect(s?.promptIds).toEqual(Array.from(Buffer.from('And Jonah')));
    expect(s?.prompt).toBe('And Jonah');
    expect(s?.ids.length).toBeGreaterThan(0);
    expect(s?.ids.length).toBeLessThanOrEqual(12);
    expect(s?.completion).toBe(byteTokenizer().decode(s?.stopped ? s.ids.slice(0, -1) : (s?.ids ?? [])));
    expect(a.out.tokenizer).toBe('byte');
    const b = await run(['--prompt', 'And Jonah', '--max-new-tokens', '12', '--seed', '3', '--json']);
    expect(b.out.samples).toEqual(a.out.samples);
  });

  it('is greedy at --temperature 0, as the engine’s generate()', async () => {
    const r = await run(['--prompt', 'the sea', '--max-new-tokens', '10', '--temperature', '0', '--no-stop', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const prompt = Uint32Array.from(Buffer.from('the sea'));
    const want = generate(
      createEngine(config),
      params,
      { prompts: prompt, nSeq: 1, promptLen: prompt.length, maxNewTokens: 10, sampling: { temperature: 0 } },
      new Sampler(0),
    );
    expect(r.out.samples[0]?.ids).toEqual(Array.from(want.tokens.subarray(prompt.length)));
  });

  it('completes the first tokens of dataset sequences in one batch, with text output', async () => {
    const r = await run(['--data', data, '--rows', '3', '--prompt-tokens', '8', '--max-new-tokens', '6', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const ds = await openTokenDataset(data);
    expect(r.out.samples.map((s) => s.promptIds)).toEqual(
      [0, 1, 2].map((i) => Array.from(ds.sequence(i).subarray(0, 8))),
    );
    const text = await distillInProcess([
      'generate',
      '--checkpoint',
      ckpt,
      '--data',
      data,
      '--rows',
      '2',
      '--max-new-tokens',
      '8',
    ]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/--- sample 2 \(/);
    expect(text.stdout).toMatch(/tokens\/s/);
  });

  it('refuses a prompt past the context, a folder that is no checkpoint and a tokenizer that does not fit', async () => {
    const long = await run(['--prompt', 'x'.repeat(40), '--max-new-tokens', '20']);
    expect(long.status).toBe(1);
    expect(long.stderr.trim().split('\n')).toHaveLength(1);
    expect(long.stderr).toMatch(/\[E_CONFIG\].*do not fit the model context.*--max-new-tokens to 8/);
    const none = await distillInProcess(['generate', '--checkpoint', dir, '--prompt', 'a']);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/^Error: \[E_NOT_FOUND\] checkpoint config.json not found/);
    const bpe = path.join(dir, 'bpe.json');
    writeBpeTokenizer(bpe);
    const tok = await run(['--prompt', 'a', '--tokenizer', bpe]);
    expect(tok.status).toBe(1);
    expect(tok.stderr).toMatch(/\[E_TOKENIZER\].*does not fit/);
    const neither = await run([]);
    expect(neither.status).toBe(1);
    expect(neither.stderr).toMatch(/\[E_USAGE\]/);
  });
});
