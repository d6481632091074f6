// Generation throughput on the native engine: generated tokens/s with the KV cache (prefill once, then one
// dn_model_decode per token, O(T) attention) against recomputing the full prefix's forward for every new token, on the
// same model, prompts and sampler seed in the same run (the two modes interleaved, fastest of --repeat), printed
// as a ratio; both produce the same tokens at temperature 0, which the run checks. --moe adds an MoE FFN every 2nd layer.
// Usage: npx tsx bench/generate.ts [--d 256] [--layers 4] [--heads 8] [--kv-heads 2] [--vocab 256] [--batch 4]
//        [--prompt 32] [--new 96] [--moe] [--repeat 3] [--threads 2] [--record]
// Smoke run (a few seconds): npx tsx bench/generate.ts --d 64 --layers 2 --heads 4 --prompt 8 --new 24 --repeat 1
import { parameterCount, parseModelConfig } from '../src/core/model.js';
import { createEngine, generate, initParams, Rng, Sampler, type GenerateResult } from '../src/engine/index.js';
import { loadNative } from '../src/native/loader.js';
import { machineLine, recordSection, table } from './record.js';
import { benchArgs } from './args.js';

const values = benchArgs(import.meta.url, {
  d: { type: 'string', default: '256' },
  layers: { type: 'string', default: '4' },
  heads: { type: 'string', default: '8' },
  'kv-heads': { type: 'string', default: '2' },
  vocab: { type: 'string', default: '256' },
  batch: { type: 'string', default: '4' },
  prompt: { type: 'string', default: '32' },
  new: { type: 'string', default: '96' },
  moe: { type: 'boolean', default: false },
  repeat: { type: 'string', default: '3' },
  threads: { type: 'string', default: '2' },
  record: { type: 'boolean', default: false },
});
const num = (k: keyof typeof values) => Number(values[k]);
const d = num('d'),
  B = num('batch'),
  P = num('prompt'),
  L = num('new'),
  repeat = num('repeat');
loadNative().addon.setNumThreads(num('threads'));
const config = parseModelConfig({
  vocabSize: num('vocab'),
  dModel: d,
  nLayers: num('layers'),
  nHeads: num('heads'),
  nKvHeads: num('kv-heads'),
  ffnDim: Math.round((8 * d) / 3),
  contextLength: P + L,
  ...(values.moe ? { moe: { experts: 8, activeExperts: 2, expertFfnDim: Math.round(d / 2), every: 2 } } : {}),
});
const params = initParams(config, 1);
const rng = new Rng(3);
const prompts = Uint32Array.from({ length: B * P }, () => rng.nextU32() % config.vocabSize);
const engine = createEngine(config);
const request = { prompts, nSeq: B, promptLen: P, maxNewTokens: L, sampling: { temperature: 0 } };

const best = { cache: Infinity, recompute: Infinity };
const outputs: Partial<Record<keyof typeof best, GenerateResult>> = {};
for (let r = 0; r < repeat; r++) {
  for (const mode of ['cache', 'recompute'] as const) {
    const t0 = performance.now();
    outputs[mode] = generate(engine, params, request, new Sampler(1), { mode });
    best[mode] = Math.min(best[mode], (performance.now() - t0) / 1000);
  }
}
engine.dispose();
const same =
  outputs.cache && outputs.recompute && outputs.cache.tokens.every((t, i) => t === outputs.recompute?.tokens[i]);
const rate = (s: number) => (B * L) / s;
const rows = (['cache', 'recompute'] as const).map((mode) => [
  mode === 'cache' ? 'KV cache (prefill + decode)' : 'recompute the prefix per token',
  best[mode].toFixed(3),
  Math.round(rate(best[mode])).toLocaleString('en'),
  (best.recompute / best[mode]).toFixed(2),
]);
const out = table(['mode', 'seconds', 'generated tokens/s', 'speed-up vs recompute'], rows);
const what = `${parameterCount(config).toLocaleString('en')} parameters (d ${d}, ${config.nLayers} layers, ${config.nHeads}/${config.nKvHeads} heads${values.moe ? ', MoE every 2nd layer, 8 experts top-2' : ''}), batch ${B}, prompt ${P}, ${L} new tokens, greedy, fastest of ${repeat}`;
console.log(`Generation on the native engine: ${what}`);
console.log(out);
console.log(
  `KV cache / recompute: ${(best.recompute / best.cache).toFixed(2)}× tokens/s; same tokens: ${same ? 'yes' : 'NO'}`,
);
if (!same) process.exitCode = 1;

if (values.record) {
  const cmd = `npx tsx bench/generate.ts ${process.argv
    .slice(2)
    .filter((a) => a !== '--record')
    .join(' ')}`.trim();
  const file = recordSection('generate', `Machine: ${machineLine()}. Command: \`${cmd}\`.\n\n${what}.\n\n${out}\n`);
  console.log(`recorded in ${file}`);
}
