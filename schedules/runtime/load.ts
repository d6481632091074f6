// Resolves a schedule spec — a built-in id, a path to an ES module, or an installed package name — into a
// Schedule with validated params and a `weights(state)` that checks every value it returns.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { DistillError } from '../../src/core/errors.js';
import type { Registry } from '../../src/core/registry.js';
import {
  defineSchedule,
  progressOf,
  type ScheduleDefinition,
  type ScheduleState,
  type ScheduleWeights,
} from '../define.js';

/** The registry the built-in ids resolve in (schedules/index.ts passes its own). */
export type ScheduleRegistry = Registry<ScheduleDefinition>;

export interface LoadScheduleOptions {
  /** Base folder for relative plugin paths and for finding packages in node_modules (default: process.cwd()). */
  cwd?: string;
}

/** A schedule with its params bound; `weights` throws DistillError E_SCHEDULE on a bad value. */
export interface Schedule<P = unknown> {
  readonly id: string;
  /** 'built-in', or the plugin's resolved file. */
  readonly source: string;
  /** How errors name it: `schedule "id"` or `schedule "id" (file)`. */
  readonly label: string;
  readonly description?: string;
  readonly params: P;
  readonly definition: ScheduleDefinition<P>;
  weights(state: ScheduleState): ScheduleWeights;
}

const ID_PATTERN = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const HINT_SHAPE =
  'default-export defineSchedule({ id, params, weights(state, params) }) or a plain object of that shape (see docs/plugins.md)';

/** Paths start with ./ ../ / file: (or end in a JS extension); anything else is a built-in id or a package name. */
export function isPathSpec(spec: string): boolean {
  return /^(\.{1,2}[\\/]|[\\/]|file:|[A-Za-z]:[\\/])/.test(spec) || /\.(m?js|cjs|m?ts)$/i.test(spec);
}

/** Finds a package's ES entry by walking node_modules folders up from `cwd`, honouring "exports". */
function resolvePackage(spec: string, cwd: string): string | undefined {
  const parts = spec.split('/');
  const nameLen = spec.startsWith('@') ? 2 : 1;
  const name = parts.slice(0, nameLen).join('/');
  const sub = parts.slice(nameLen).join('/');
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const pkgDir = path.join(dir, 'node_modules', name);
    const pkgJson = path.join(pkgDir, 'package.json');
    if (existsSync(pkgJson)) {
      let pkg: Record<string, unknown>;
      try {
        pkg = JSON.parse(readFileSync(pkgJson, 'utf8'));
      } catch (err) {
        throw new DistillError('E_PLUGIN', `schedule plugin package ${name} has an unreadable package.json`, {
          subject: pkgJson,
          found: (err as Error).message,
        });
      }
      const pick = (e: unknown): string | undefined => {
        if (typeof e === 'string') return e;
        if (Array.isArray(e)) return e.map(pick).find((x) => x !== undefined);
        if (e && typeof e === 'object') {
          for (const c of ['import', 'node', 'default'])
            if (c in e) {
              const r = pick((e as Record<string, unknown>)[c]);
              if (r) return r;
            }
        }
        return undefined;
      };
      const exp = pkg.exports as unknown;
      const key = sub ? `./${sub}` : '.';
      let entry: string | undefined;
      if (exp !== undefined) {
        const mapped =
          exp && typeof exp === 'object' && !Array.isArray(exp) && Object.keys(exp).some((k) => k.startsWith('.'));
        entry = mapped ? pick((exp as Record<string, unknown>)[key]) : sub ? undefined : pick(exp);
      }
      if (!entry && sub) entry = sub;
      entry ??=
        (typeof pkg.module === 'string' ? pkg.module : undefined) ??
        (typeof pkg.main === 'string' ? pkg.main : undefined) ??
        'index.js';
      const file = path.resolve(pkgDir, entry);
      if (existsSync(file) && statSync(file).isFile()) return file;
      throw new DistillError('E_PLUGIN', `schedule plugin package ${spec}: its entry file is missing`, {
        subject: pkgJson,
        expected: 'the file named by "exports", "module" or "main"',
        found: `${file} (not found)`,
      });
    }
    if (path.dirname(dir) === dir) break;
  }
  try {
    return createRequire(path.join(path.resolve(cwd), 'noop.js')).resolve(spec);
  } catch {
    return undefined;
  }
}

/** Imports a plugin file and validates its default export into a ScheduleDefinition. */
async function importPlugin(file: string, label: string): Promise<ScheduleDefinition> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as Error & { code?: string };
    const hint =
      e.code === 'ERR_UNKNOWN_FILE_EXTENSION'
        ? 'Node runs JavaScript plugins: compile it to .js/.mjs first'
        : 'fix the module so that `node` can import it';
    throw new DistillError('E_PLUGIN', `schedule plugin ${label} failed to load`, {
      subject: file,
      found: `${e.name}: ${e.message}`,
      hint,
      cause: err,
    });
  }
  const def = mod.default;
  if (def === undefined || def === null) {
    const named = Object.keys(mod).filter((k) => k !== 'default');
    throw new DistillError('E_PLUGIN', `schedule plugin ${label} has no default export`, {
      subject: file,
      found: named.length ? `only named exports (${named.join(', ')})` : 'an empty module',
      hint: HINT_SHAPE,
    });
  }
  let out: ScheduleDefinition;
  try {
    out = defineSchedule(def as never);
  } catch (err) {
    throw new DistillError('E_PLUGIN', `schedule plugin ${label} is not a valid schedule`, {
      subject: file,
      found: (err as Error).message,
      hint: HINT_SHAPE,
    });
  }
  if (!ID_PATTERN.test(out.id)) {
    throw new DistillError('E_PLUGIN', `schedule plugin ${label} has an invalid id`, {
      subject: file,
      expected: 'lower-case words joined by "-" (e.g. "my-curriculum")',
      found: JSON.stringify(out.id),
    });
  }
  return out;
}

/** The definition behind a spec and where it came from ('built-in' or the plugin file). */
export async function loadScheduleDefinitionWith(
  registry: ScheduleRegistry,
  spec: string,
  opts: LoadScheduleOptions = {},
): Promise<{ definition: ScheduleDefinition; source: string }> {
  const cwd = opts.cwd ?? process.cwd();
  const knownIds = (): string => registry.ids().join(', ');
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new DistillError('E_USAGE', 'empty schedule', {
      expected: `a built-in id (${knownIds()}), a path to an ES module, or a package name`,
    });
  }
  if (!isPathSpec(spec) && registry.has(spec)) return { definition: registry.get(spec), source: 'built-in' };
  let file: string | undefined;
  if (isPathSpec(spec)) {
    file = spec.startsWith('file:') ? new URL(spec).pathname : path.resolve(cwd, spec);
    if (!existsSync(file) || !statSync(file).isFile()) {
      throw new DistillError('E_PLUGIN', `schedule plugin ${spec} not found`, {
        subject: spec,
        expected: 'an ES module file',
        found: `nothing at ${file}`,
        hint: 'check the path (relative paths start from the current folder)',
      });
    }
  } else {
    file = resolvePackage(spec, cwd);
    if (!file) {
      throw new DistillError('E_PLUGIN', `unknown schedule "${spec}"`, {
        subject: spec,
        expected: `a built-in id (${knownIds()}), a path to an ES module (start it with ./), or an installed package name`,
        found: `no built-in and no package "${spec}" under node_modules from ${cwd}`,
        hint: `install the package (npm i ${spec}) or pass its file path`,
      });
    }
  }
  return { definition: await importPlugin(file, spec), source: file };
}

function valueAt(input: unknown, p: PropertyKey[]): unknown {
  let v: unknown = input;
  for (const k of p) v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

function fmt(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Validates `params` against the definition's schema; the error names the schedule and each bad value. */
export function parseScheduleParams<P>(definition: ScheduleDefinition<P>, params: unknown, label: string): P {
  const input = params ?? {};
  let res: { success: true; data: P } | { success: false; error: z.ZodError };
  try {
    res = definition.params.safeParse(input) as typeof res;
  } catch (err) {
    throw new DistillError('E_PLUGIN', `${label}: its params schema threw`, { found: (err as Error).message });
  }
  if (res.success) return res.data;
  const issues = res.error.issues.map((i) => {
    const where = i.path.map(String).join('.') || '(root)';
    const got = i.path.length ? ` (got ${fmt(valueAt(input, i.path))})` : '';
    return `${where}: ${i.message}${got}`;
  });
  throw new DistillError('E_PARAMS', `invalid params for ${label}`, {
    subject: label,
    found: fmt(input),
    hint: issues.join('; '),
  });
}

function describeValue(w: unknown): string {
  if (w === null || typeof w !== 'object') return fmt(w);
  const o = w as Record<string, unknown>;
  const t = 'temperature' in o ? `, temperature: ${fmt(o.temperature)}` : '';
  const on = 'onPolicy' in o ? `, onPolicy: ${fmt(o.onPolicy)}` : '';
  return `{ hard: ${fmt(o.hard)}, soft: ${fmt(o.soft)}${t}${on} }`;
}

/**
 * Calls the definition and checks the result: finite hard/soft ≥ 0, temperature (if any) finite and > 0,
 * onPolicy (if any) in [0, 1].
 */
function checkedWeights<P>(
  def: ScheduleDefinition<P>,
  params: P,
  label: string,
  state: ScheduleState,
): ScheduleWeights {
  let w: unknown;
  try {
    w = def.weights(state, params);
  } catch (err) {
    throw new DistillError('E_SCHEDULE', `${label} threw at step ${state.step}`, {
      subject: label,
      found: `${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}`,
      hint: "fix the schedule's weights()",
      cause: err,
    });
  }
  if (w === null || typeof w !== 'object') {
    throw new DistillError('E_SCHEDULE', `${label} returned an invalid value at step ${state.step}`, {
      subject: label,
      expected: '{ hard, soft, temperature?, onPolicy? }',
      found: describeValue(w),
    });
  }
  const o = w as Record<string, unknown>;
  for (const k of ['hard', 'soft'] as const) {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      const why = typeof v !== 'number' ? 'not a number' : !Number.isFinite(v) ? 'non-finite' : 'negative';
      throw new DistillError('E_SCHEDULE', `${label} returned a ${why} ${k} weight at step ${state.step}`, {
        subject: label,
        expected: `a finite ${k} weight ≥ 0`,
        found: `${k}=${fmt(v)} in ${describeValue(w)}`,
      });
    }
  }
  const out: ScheduleWeights = { hard: o.hard as number, soft: o.soft as number };
  if (o.temperature !== undefined) {
    const t = o.temperature;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) {
      throw new DistillError('E_SCHEDULE', `${label} returned an invalid temperature at step ${state.step}`, {
        subject: label,
        expected: 'a finite temperature > 0',
        found: `temperature=${fmt(t)}`,
      });
    }
    out.temperature = t;
  }
  if (o.onPolicy !== undefined) {
    const l = o.onPolicy;
    if (typeof l !== 'number' || !(l >= 0 && l <= 1)) {
      throw new DistillError('E_SCHEDULE', `${label} returned an invalid onPolicy share at step ${state.step}`, {
        subject: label,
        expected: 'onPolicy: a number in [0, 1] (the share of on-policy steps)',
        found: `onPolicy=${fmt(l)}`,
      });
    }
    out.onPolicy = l;
  }
  return out;
}

/** Binds a definition to validated params. */
export function bindSchedule<P>(definition: ScheduleDefinition<P>, params: unknown, source: string): Schedule<P> {
  const label = source === 'built-in' ? `schedule "${definition.id}"` : `schedule "${definition.id}" (${source})`;
  const bound = parseScheduleParams(definition, params, label);
  return {
    id: definition.id,
    source,
    label,
    ...(definition.description !== undefined ? { description: definition.description } : {}),
    params: bound,
    definition,
    weights: (state) => checkedWeights(definition, bound, label, state),
  };
}

/**
 * Loads a schedule by built-in id, file path or package name and validates its params.
 * Errors: E_PLUGIN (missing, unloadable, malformed), E_PARAMS (params fail the schema).
 */
export async function resolveScheduleWith(
  registry: ScheduleRegistry,
  spec: string,
  params?: unknown,
  opts: LoadScheduleOptions = {},
): Promise<Schedule> {
  const { definition, source } = await loadScheduleDefinitionWith(registry, spec, opts);
  return bindSchedule(definition, params, source);
}

/** A full ScheduleState with placeholder metrics, for callers that do not track any (plots, tests). */
export function bareState(step: number, totalSteps: number, tokensSeen = 0): ScheduleState {
  return {
    step,
    totalSteps,
    tokensSeen,
    progress: progressOf(step, totalSteps),
    hardLoss: 0,
    softLoss: 0,
    agreement: 0,
    hardLossEma: 0,
    softLossEma: 0,
    agreementEma: 0,
    observed: 0,
  };
}
