// Reads run directories for reports: `<run>/eval.json` and `<run>/metrics.jsonl` (required), `<run>/config.json`
// (optional model config). Tolerates missing optional fields; names the file, line and field of anything wrong.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../../core/errors.js';
import { activeParameterCount, parameterCount, type ModelConfig } from '../../core/model.js';
import { readMetricsLog, type MetricsRow } from '../../data/metrics-log.js';
import { readModelConfig, readTrainerState } from '../../engine/checkpoint.js';
import { readEvalFile, type EvalReport } from '../eval-file.js';

/** The held-out metrics of one run as the report uses them: eval.json with its defaults filled in. */
export type RunEval = Pick<
  EvalReport,
  'baseline' | 'heldOutCE' | 'perplexity' | 'agreement' | 'klToTeacher' | 'ece' | 'params' | 'tokensPerSecond' | 'moe'
> & {
  name: string;
  /** Parameters one token uses (params for a dense model). */
  activeParams: number;
  teacher?: { heldOutCE: number; perplexity: number; params?: number; activeParams?: number };
  cache?: { bytesPerPosition: number; uri?: string };
  /** What it was scored on (eval.json of this version; older files lack them). */
  heldOut?: EvalReport['heldOut'];
  reference?: EvalReport['reference'];
  heldOutCEStdErr?: number;
  sequenceSums?: EvalReport['sequenceSums'];
  /** The 15 calibration bins behind the ECE (reliability diagram). */
  calibration: EvalReport['calibration'];
};

/** How the run was trained, from its trainer-state.json (absent for folders without a checkpoint). */
export interface RunSettings {
  lr: number;
  minLr: number;
  warmupSteps: number;
  steps: number;
  batchSize: number;
  gradAccum: number;
  seed: number;
  loss: string;
  support: string;
  temperature: number;
  schedule: string | null;
  /** SHA-256 of the training token dataset, and the cache fingerprint (null: CE-only). */
  dataset: string;
  cache: string | null;
}

export interface RunData {
  dir: string;
  name: string;
  config?: ModelConfig;
  settings?: RunSettings;
  /** k and encodings of the run's logit cache, when the report could read its manifest. */
  cacheInputs?: { k: number; encodings: { ids: string; logp: string; compression: string } };
  eval: RunEval;
  metrics: MetricsRow[];
  /** Lines of metrics.jsonl left out (a truncated last line of a run still being written). */
  skippedLines: number;
}

/** A field that eval.json left out (or wrote as null) reads as NaN; the report then uses `fallback`. */
const orElse = (v: number, fallback: number): number => (Number.isNaN(v) ? fallback : v);

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
        hint: 'train with `distill student train` and evaluate with `distill eval`',
      });
    }
    out.push(...subs);
  }
  return out;
}

/** Reads one run directory; required: eval.json and metrics.jsonl. */
export function readRun(dir: string): RunData {
  const evalFile = path.join(dir, 'eval.json');
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const configFile = path.join(dir, 'config.json');
  if (!existsSync(evalFile)) {
    throw new DistillError('E_NOT_FOUND', `run ${dir} has no eval.json`, {
      subject: evalFile,
      hint: 'evaluate the checkpoint first with `distill eval` on held-out tokens',
    });
  }
  if (!existsSync(metricsFile)) {
    throw new DistillError('E_NOT_FOUND', `run ${dir} has no metrics.jsonl`, {
      subject: metricsFile,
      hint: 'pass the folder `distill student train` wrote for this student',
    });
  }
  const e = readEvalFile(evalFile);
  const config = existsSync(configFile) ? readModelConfig(configFile) : undefined;
  const { rows, skipped } = readMetricsLog(metricsFile);
  const tps = rows.map((r) => r.tokensPerSecond).filter(Number.isFinite);
  const ev: RunEval = {
    name: e.name ?? path.basename(path.resolve(dir)),
    baseline: e.baseline,
    heldOutCE: e.heldOutCE,
    perplexity: orElse(e.perplexity, Math.exp(e.heldOutCE)),
    agreement: e.agreement,
    klToTeacher: e.klToTeacher,
    ece: e.ece,
    params: orElse(e.params, config ? parameterCount(config) : NaN),
    activeParams: orElse(e.activeParams ?? NaN, config ? activeParameterCount(config) : orElse(e.params, NaN)),
    // Without a measured eval throughput, the training throughput's mean is the best available figure.
    tokensPerSecond: orElse(e.tokensPerSecond, tps.length ? tps.reduce((a, b) => a + b, 0) / tps.length : NaN),
    calibration: e.calibration,
  };
  if (e.teacher)
    ev.teacher = {
      heldOutCE: e.teacher.heldOutCE,
      perplexity: orElse(e.teacher.perplexity, Math.exp(e.teacher.heldOutCE)),
      ...(e.teacher.params !== undefined ? { params: e.teacher.params } : {}),
      ...(e.teacher.activeParams !== undefined ? { activeParams: e.teacher.activeParams } : {}),
    };
  if (e.moe) ev.moe = e.moe;
  if (e.cache && !Number.isNaN(e.cache.bytesPerPosition))
    ev.cache = { bytesPerPosition: e.cache.bytesPerPosition, ...(e.cache.uri ? { uri: e.cache.uri } : {}) };
  if (e.heldOut) ev.heldOut = e.heldOut;
  if (e.reference) ev.reference = e.reference;
  if (e.heldOutCEStdErr !== undefined && Number.isFinite(e.heldOutCEStdErr)) ev.heldOutCEStdErr = e.heldOutCEStdErr;
  if (e.sequenceSums) ev.sequenceSums = e.sequenceSums;
  const settings = runSettings(dir);
  return {
    dir,
    name: ev.name,
    ...(config ? { config } : {}),
    ...(settings ? { settings } : {}),
    eval: ev,
    metrics: rows,
    skippedLines: skipped,
  };
}

/** The settings of a run; a missing or unreadable trainer-state.json (it is optional here) leaves them out. */
function runSettings(dir: string): RunSettings | undefined {
  let st: ReturnType<typeof readTrainerState>;
  try {
    st = readTrainerState(dir);
  } catch {
    return undefined;
  }
  if (!st) return undefined;
  return {
    lr: st.lr.lr,
    minLr: st.lr.minLr,
    warmupSteps: st.lr.warmupSteps,
    steps: st.run.steps,
    batchSize: st.run.batchSize,
    gradAccum: st.run.gradAccum,
    seed: st.run.seed,
    loss: st.student.loss,
    support: st.student.support,
    temperature: st.student.temperature,
    schedule: st.student.schedule,
    dataset: st.run.dataset,
    cache: st.run.cache,
  };
}

/** Reads every run; duplicate names get their parent folder's name prepended so charts stay unambiguous. */
export function readRuns(dirs: string[]): RunData[] {
  const runs = expandRunDirs(dirs).map(readRun);
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.name, (counts.get(r.name) ?? 0) + 1);
  for (const r of runs) {
    if ((counts.get(r.name) ?? 0) > 1) {
      r.name = `${path.basename(path.dirname(path.resolve(r.dir)))}/${r.name}`;
      r.eval.name = r.name;
    }
  }
  return runs;
}
