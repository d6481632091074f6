// An interrupted demo resumes: <out>/demo-state.json records the budget and the phases done; the teacher run
// skips committed shards and training continues from its checkpoints. What a stopped demo keeps, in words.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../core/errors.js';
import { readTrainerState } from '../engine/index.js';
import { cacheProgress, makeDir, writeFileAtomic } from '../store/index.js';
import type { StudentSpec } from '../student/index.js';

export type DemoBudget = 'small' | 'full';
/** The fixture teacher: 'moe' (fixtures/teacher-moe) or 'dense' (fixtures/teacher, the original demo). */
export type DemoTeacher = 'dense' | 'moe';

export interface DemoRuns {
  kd: Array<StudentSpec & { schedule: string }>;
  baseline: StudentSpec;
  kdDir: string;
  baseDir: string;
}

/** <out>/demo-state.json: the budget and the phases done, so that an interrupted demo resumes where it stopped. */
export interface DemoState {
  budget: DemoBudget;
  /** Absent in states written before the MoE teacher: those demos used the dense one. */
  teacher?: DemoTeacher;
  done: string[];
}
const STATE_FILE = 'demo-state.json';

function readState(out: string): DemoState | undefined {
  try {
    const s = JSON.parse(readFileSync(path.join(out, STATE_FILE), 'utf8')) as DemoState;
    return Array.isArray(s.done) ? s : undefined;
  } catch {
    return undefined;
  }
}

export const writeState = (out: string, s: DemoState) =>
  writeFileAtomic(path.join(out, STATE_FILE), `${JSON.stringify(s)}\n`);

/**
 * A new demo in `out`, or the interrupted one there (same budget and teacher); a finished or foreign one only with
 * `force`.
 */
export function prepareOut(out: string, force: boolean, budget: DemoBudget, teacher: DemoTeacher): DemoState {
  const parts = ['data', 'cache', 'runs', 'report'];
  const present = existsSync(out) ? parts.filter((p) => existsSync(path.join(out, p))) : [];
  const state = readState(out);
  const interrupted = state !== undefined && !state.done.includes('report');
  const had = { budget: state?.budget, teacher: state?.teacher ?? 'dense' };
  if (!force && interrupted && had.budget === budget && had.teacher === teacher) return state;
  if (present.length && !force) {
    const what = interrupted
      ? `an interrupted demo of the ${had.budget} budget with the ${had.teacher} teacher`
      : `a demo (${present.join(', ')})`;
    throw new DistillError('E_USAGE', `${out} already holds ${what}`, {
      subject: out,
      hint: `pass \`force\` to replace it, or choose another \`out\`${interrupted ? `, or resume it with the ${had.budget} budget and the ${had.teacher} teacher` : ''}`,
    });
  }
  for (const p of [...present, STATE_FILE]) rmSync(path.join(out, p), { recursive: true, force: true });
  makeDir(path.join(out, 'data'));
  const fresh: DemoState = { budget, teacher, done: [] };
  writeState(out, fresh);
  return fresh;
}

/** Whether every student of a run folder has a checkpoint: 'none', 'partial' (resumable) or 'done' (all steps). */
export function trainedState(dir: string, names: string[], steps: number): 'none' | 'partial' | 'done' {
  const states = names.map((n) => readTrainerState(path.join(dir, n)));
  if (states.some((s) => s === undefined)) return 'none';
  return states.every((s) => s?.step === steps) ? 'done' : 'partial';
}

/** What an interrupted demo keeps in `out`, in words. */
export async function keptSoFar(out: string, state: DemoState, steps: number, runs: DemoRuns): Promise<string> {
  const kept: string[] = [];
  if (state.done.includes('prepare')) kept.push('data/');
  const cache = await cacheProgress(path.join(out, 'cache')).catch(() => undefined);
  if (cache?.numShards !== undefined) kept.push(`cache/ (${cache.committed} of ${cache.numShards} shards)`);
  for (const [dir, names, label] of [
    [runs.kdDir, runs.kd.map((s) => s.name), 'runs/kd/'],
    [runs.baseDir, [runs.baseline.name], 'runs/baseline/'],
  ] as const) {
    const step = readTrainerState(path.join(dir, names[0] ?? ''))?.step;
    if (step !== undefined) kept.push(`${label} (checkpoints at step ${step} of ${steps})`);
  }
  return kept.length ? kept.join(', ') : 'nothing yet';
}
