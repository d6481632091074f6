// Reads run directories for reports: `<run>/eval.json` and `<run>/metrics.jsonl` (required), `<run>/config.json`
// (optional model config). Tolerates missing optional fields; names the file, line and field of anything wrong.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DistillError } from '../../core/errors.js';
import { parameterCount, parseModelConfig, type ModelConfig } from '../../core/model.js';

/** A number, or null/absent (JSON has no NaN); both read as NaN. */
const optNum = z.union([z.number(), z.null()]).optional();

const EvalFileSchema = z
  .object({
    name: z.string().optional(),
    baseline: z.boolean().optional(),
    heldOutCE: z.number(),
    perplexity: optNum,
    agreement: optNum,
    klToTeacher: optNum,
    ece: optNum,
    params: optNum,
    tokensPerSecond: optNum,
    teacher: z.object({ heldOutCE: z.number(), perplexity: optNum }).passthrough().nullable().optional(),
    cache: z.object({ bytesPerPosition: optNum }).passthrough().nullable().optional(),
  })
  .passthrough();

export interface MetricRow {
  step: number;
  loss: number;
  hardLoss: number;
  softLoss: number;
  hard: number;
  soft: number;
  lr: number;
  tokensPerSecond: number;
  temperature?: number;
  agreement?: number;
}

export interface RunEval {
  name: string;
  baseline: boolean;
  heldOutCE: number;
  perplexity: number;
  agreement: number;
  klToTeacher: number;
  ece: number;
  params: number;
  tokensPerSecond: number;
  teacher?: { heldOutCE: number; perplexity: number };
  cache?: { bytesPerPosition: number };
}

export interface RunData {
  dir: string;
  name: string;
  config?: ModelConfig;
  eval: RunEval;
  metrics: MetricRow[];
  /** Lines of metrics.jsonl left out (a truncated last line of a run still being written). */
  skippedLines: number;
}

const n = (v: number | null | undefined): number => (typeof v === 'number' ? v : NaN);

function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DistillError('E_EVAL', `${what} ${file} is not valid JSON`, {
      subject: file,
      found: (err as Error).message,
    });
  }
}

function isRunDir(dir: string): boolean {
  return existsSync(path.join(dir, 'eval.json')) || existsSync(path.join(dir, 'metrics.jsonl'));
}

/**
 * Expands the arguments into run directories: a folder holding eval.json or metrics.jsonl is a run; a
 * folder holding neither but with such subfolders (a training output with one folder per student) is
 * expanded into them, sorted by name.
 */
export function expandRunDirs(dirs: string[]): string[] {
  if (dirs.length === 0)
    throw new DistillError('E_USAGE', 'no run directories given', {
      hint: 'pass one or more folders written by `distill student train` and `distill eval`',
    });
  const out: string[] = [];
  for (const d of dirs) {
    if (!existsSync(d) || !statSync(d).isDirectory())
      throw new DistillError('E_NOT_FOUND', `run directory ${d} not found`, { subject: d });
    if (isRunDir(d)) {
      out.push(d);
      continue;
    }
    const subs = readdirSync(d, { withFileTypes: true })
      .filter((e) => e.isDirectory() && isRunDir(path.join(d, e.name)))
      .map((e) => path.join(d, e.name))
      .sort();
    if (subs.length === 0) {
      throw new DistillError('E_NOT_FOUND', `${d} is not a run directory`, {
        subject: d,
        expected: 'a folder with eval.json and metrics.jsonl, or a folder of such folders',
        found: 'neither',
        hint: 'train with `distill student train --out <dir>` and evaluate with `distill eval`',
      });
    }
    out.push(...subs);
  }
  return out;
}

function readMetrics(file: string): { rows: MetricRow[]; skipped: number } {
  const lines = readFileSync(file, 'utf8').split('\n');
  const rows: MetricRow[] = [];
  let skipped = 0;
  const last = lines.reduce((acc, l, i) => (l.trim() ? i : acc), -1);
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch (err) {
      // A run still being written may end in half a line; anything earlier is corruption.
      if (i === last && !line.endsWith('}')) {
        skipped += 1;
        return;
      }
      throw new DistillError('E_EVAL', `${file} line ${i + 1} is not valid JSON`, {
        subject: file,
        found: (err as Error).message,
      });
    }
    if (typeof o !== 'object' || o === null || typeof o.step !== 'number') {
      throw new DistillError('E_EVAL', `${file} line ${i + 1} has no numeric "step"`, {
        subject: file,
        found: line.slice(0, 120),
      });
    }
    const num = (k: string) => (typeof o[k] === 'number' ? (o[k] as number) : NaN);
    const row: MetricRow = {
      step: o.step as number,
      loss: num('loss'),
      hardLoss: num('hardLoss'),
      softLoss: num('softLoss'),
      hard: num('hard'),
      soft: num('soft'),
      lr: num('lr'),
      tokensPerSecond: num('tokensPerSecond'),
    };
    if (typeof o.temperature === 'number') row.temperature = o.temperature;
    if (typeof o.agreement === 'number') row.agreement = o.agreement;
    rows.push(row);
  });
  return { rows, skipped };
}

/** Reads one run directory; required: eval.json and metrics.jsonl. */
export function readRun(dir: string): RunData {
  const evalFile = path.join(dir, 'eval.json');
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const configFile = path.join(dir, 'config.json');
  if (!existsSync(evalFile)) {
    throw new DistillError('E_NOT_FOUND', `run ${dir} has no eval.json`, {
      subject: evalFile,
      hint: 'evaluate the checkpoint first: distill eval --checkpoint <run> --data <held-out tokens.arrow>',
    });
  }
  if (!existsSync(metricsFile)) {
    throw new DistillError('E_NOT_FOUND', `run ${dir} has no metrics.jsonl`, {
      subject: metricsFile,
      hint: 'pass the folder `distill student train` wrote for this student',
    });
  }
  const res = EvalFileSchema.safeParse(readJson(evalFile, 'eval file'));
  if (!res.success) {
    throw new DistillError('E_EVAL', `eval file ${evalFile} is malformed`, {
      subject: evalFile,
      hint: res.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
    });
  }
  const e = res.data;
  let config: ModelConfig | undefined;
  if (existsSync(configFile)) config = parseModelConfig(readJson(configFile, 'model config'), configFile);
  const { rows, skipped } = readMetrics(metricsFile);
  const tps = rows.map((r) => r.tokensPerSecond).filter(Number.isFinite);
  const ev: RunEval = {
    name: e.name ?? path.basename(path.resolve(dir)),
    baseline: e.baseline ?? false,
    heldOutCE: e.heldOutCE,
    perplexity: typeof e.perplexity === 'number' ? e.perplexity : Math.exp(e.heldOutCE),
    agreement: n(e.agreement),
    klToTeacher: n(e.klToTeacher),
    ece: n(e.ece),
    params: typeof e.params === 'number' ? e.params : config ? parameterCount(config) : NaN,
    // Without a measured eval throughput, the training throughput's mean is the best available figure.
    tokensPerSecond:
      typeof e.tokensPerSecond === 'number'
        ? e.tokensPerSecond
        : tps.length
          ? tps.reduce((a, b) => a + b, 0) / tps.length
          : NaN,
  };
  if (e.teacher)
    ev.teacher = {
      heldOutCE: e.teacher.heldOutCE,
      perplexity: typeof e.teacher.perplexity === 'number' ? e.teacher.perplexity : Math.exp(e.teacher.heldOutCE),
    };
  if (e.cache && typeof e.cache.bytesPerPosition === 'number')
    ev.cache = { bytesPerPosition: e.cache.bytesPerPosition };
  return { dir, name: ev.name, ...(config ? { config } : {}), eval: ev, metrics: rows, skippedLines: skipped };
}

/** Reads every run; duplicate names get their parent folder's name prepended so charts stay unambiguous. */
export function readRuns(dirs: string[]): RunData[] {
  const runs = expandRunDirs(dirs).map(readRun);
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.name, (counts.get(r.name) ?? 0) + 1);
  for (const r of runs) {
    if (counts.get(r.name)! > 1) {
      r.name = `${path.basename(path.dirname(path.resolve(r.dir)))}/${r.name}`;
      r.eval.name = r.name;
    }
  }
  return runs;
}
