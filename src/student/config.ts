// Student config files: either a bare ModelConfig JSON, or { "model": ModelConfig, "distill": { loss,
// support, temperature, beta, alpha, schedule, params } } giving that student its own KD settings.
// The student's name (its output subfolder) is the file's base name without `.json`.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DistillError } from '../core/errors.js';
import { parseModelConfig } from '../core/model.js';
import { formatIssues } from '../core/schema.js';
import type { StudentSpec } from './student-run.js';

const DistillSection = z
  .object({
    loss: z.string().optional(),
    support: z.string().optional(),
    temperature: z.number().positive().optional(),
    beta: z.number().optional(),
    alpha: z.number().optional(),
    schedule: z.string().optional(),
    params: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type StudentDefaults = Omit<StudentSpec, 'name' | 'config'>;

/** Reads one config file into a StudentSpec; `defaults` (from CLI flags) fill what the file leaves out. */
export function loadStudentSpec(file: string, defaults: StudentDefaults = {}): StudentSpec {
  if (!existsSync(file)) throw new DistillError('E_NOT_FOUND', `student config ${file} not found`, { subject: file });
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DistillError('E_CONFIG', `student config ${file} is not valid JSON`, {
      subject: file,
      found: (err as Error).message,
    });
  }
  const name = path.basename(file).replace(/\.json$/i, '');
  if (!/^[\w.-]+$/.test(name))
    throw new DistillError('E_CONFIG', `student config file name ${name} cannot name an output folder`, {
      expected: 'letters, digits, ".", "_" or "-"',
      subject: file,
    });
  // { model, distill? } or a bare ModelConfig.
  const nested =
    typeof raw === 'object' && raw !== null && 'model' in raw ? (raw as Record<string, unknown>) : undefined;
  const config = parseModelConfig(nested ? nested.model : raw, file);
  const spec: StudentSpec = { name, config, ...defaults };
  if (nested && nested.distill !== undefined) {
    const res = DistillSection.safeParse(nested.distill);
    if (!res.success) {
      throw new DistillError('E_CONFIG', `invalid "distill" section in ${file}`, {
        subject: file,
        hint: formatIssues(res.error.issues),
      });
    }
    const { params, schedule, ...rest } = res.data;
    Object.assign(spec, rest);
    if (schedule !== undefined)
      spec.schedule = /^\.\.?\//.test(schedule) ? path.resolve(path.dirname(file), schedule) : schedule;
    if (params !== undefined) spec.scheduleParams = params;
  }
  return spec;
}
