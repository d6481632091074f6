// Writes fixture run directories in the trainer's and evaluator's format: config.json (ModelConfig),
// metrics.jsonl (one line per step) and eval.json, with losses that fall over the steps.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface FixtureRun {
  name: string;
  baseline?: boolean;
  dModel?: number;
  steps?: number;
  heldOutCE: number;
  /** Hard weight at step s of n (soft = 1 − hard for distilled runs, 0 for the baseline). */
  hard?: (s: number, n: number) => number;
  evalExtra?: Record<string, unknown>;
  omit?: Array<'eval.json' | 'metrics.jsonl' | 'config.json'>;
}

export function makeRunsRoot(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'distill-runs-'));
}

export function writeRun(root: string, r: FixtureRun): string {
  const dir = path.join(root, r.name);
  mkdirSync(dir, { recursive: true });
  const d = r.dModel ?? 32;
  const config = { vocabSize: 64, dModel: d, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 2 * d, contextLength: 32 };
  const n = r.steps ?? 40;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const hard = r.baseline ? 1 : (r.hard ?? ((s, m) => 1 - s / m))(i, n);
    const soft = r.baseline ? 0 : 1 - hard;
    const hardLoss = r.heldOutCE + 2.5 * Math.exp(-i / 8) + 0.05 * Math.sin(i);
    const softLoss = r.baseline ? 0 : 0.4 + 1.5 * Math.exp(-i / 10);
    lines.push(
      JSON.stringify({
        step: i + 1,
        loss: hard * hardLoss + soft * softLoss,
        hardLoss,
        softLoss,
        hard,
        soft,
        lr: 1e-3,
        tokensPerSecond: 5000 + i,
        temperature: 1,
        agreement: 0.2 + i / (2 * n),
        gradNorm: 1,
        tokens: i * 256,
      }),
    );
  }
  const ev = {
    name: r.name,
    baseline: r.baseline ?? false,
    heldOutCE: r.heldOutCE,
    perplexity: Math.exp(r.heldOutCE),
    agreement: r.baseline ? 0.41 : 0.55,
    klToTeacher: r.baseline ? 0.9 : 0.35,
    ece: 0.04,
    params: 1000 * d,
    tokensPerSecond: 12000,
    teacher: { heldOutCE: 2.1, perplexity: Math.exp(2.1) },
    cache: { bytesPerPosition: 136 },
    // 15 bins, the top ones empty; accuracy a little below confidence (over-confident), more so for higher CE.
    calibration: Array.from({ length: 15 }, (_, b) => {
      const conf = (b + 0.5) / 15;
      return b > 12
        ? { lo: b / 15, hi: (b + 1) / 15, count: 0, accuracy: null, confidence: null }
        : {
            lo: b / 15,
            hi: (b + 1) / 15,
            count: 100 + b,
            accuracy: conf * (1 - (r.heldOutCE - 2) / 10),
            confidence: conf,
          };
    }),
    ...r.evalExtra,
  };
  const omit = new Set(r.omit ?? []);
  if (!omit.has('config.json')) writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  if (!omit.has('metrics.jsonl')) writeFileSync(path.join(dir, 'metrics.jsonl'), `${lines.join('\n')}\n`);
  if (!omit.has('eval.json')) writeFileSync(path.join(dir, 'eval.json'), JSON.stringify(ev));
  return dir;
}

/** Three distilled students (one hard-to-soft shaped) and a CE-only baseline, as the demo produces. */
export function demoRuns(): { root: string; dirs: string[] } {
  const root = makeRunsRoot();
  const dirs = [
    writeRun(root, {
      name: 'small-h2s',
      heldOutCE: 2.6,
      dModel: 32,
      hard: (s, n) => (s < n * 0.1 ? 0.9 : s > n * 0.7 ? 0.1 : 0.9 - (0.8 * (s - n * 0.1)) / (n * 0.6)),
    }),
    writeRun(root, { name: 'small-const', heldOutCE: 2.75, dModel: 32, hard: () => 0.5 }),
    writeRun(root, { name: 'medium-linear', heldOutCE: 2.45, dModel: 48 }),
    writeRun(root, { name: 'baseline', heldOutCE: 2.9, dModel: 32, baseline: true }),
  ];
  return { root, dirs };
}
