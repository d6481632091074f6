// metrics.jsonl, the training log of one student: one JSON line per optimizer step. The trainer appends
// to it; reports, schedule plots and resumed runs read it. A last line without its newline is a write in
// progress (or cut by a crash) and is left out; any other line that is not a metrics row is an error.
import { existsSync, readFileSync, appendFileSync } from 'node:fs';
import { z } from 'zod';
import { DistillError } from '../core/errors.js';
import { MoeLayerMetricsSchema } from '../core/moe.js';
import { ioError } from '../core/io-errors.js';
import { formatIssues, jsonNumber } from '../core/schema.js';
import { writeFileAtomic } from '../store/index.js';

/** JSON has no NaN: the trainer's NaN is written as null, and null (or an absent field) reads back as NaN. */
const metric = jsonNumber;

export const MetricsRowSchema = z.object({
  /** 1-based optimizer step this line reports. */
  step: z.number(),
  /** hard · hardLoss + soft · softLoss (+ the MoE aux losses), averaged over the step's micro-batches. */
  loss: metric,
  hardLoss: metric,
  softLoss: metric,
  /** The schedule's weights and temperature for the step. */
  hard: metric,
  soft: metric,
  lr: metric,
  tokensPerSecond: metric,
  temperature: metric,
  /** Share of positions where the student's top-1 is the teacher's. */
  agreement: metric,
  /** Global gradient norm before clipping. */
  gradNorm: metric,
  /** Tokens seen after the step. */
  tokens: metric,
  /** Runs with a live teacher: whether the step was on-policy, and the schedule's on-policy share λ. */
  onPolicy: z.boolean().optional(),
  onPolicyShare: z.number().optional(),
  /** Runs with a live teacher: tokens the student sampled and positions the live teacher scored in the step. */
  generatedTokens: z.number().optional(),
  teacherPositions: z.number().optional(),
  /** MoE students: routing metrics of each MoE layer over the step's tokens. */
  moe: z.array(MoeLayerMetricsSchema).optional(),
});
export type MetricsRow = z.infer<typeof MetricsRowSchema>;

export interface MetricsLog {
  rows: MetricsRow[];
  /** 1 when the last line was torn (no newline yet), else 0. */
  skipped: number;
}

const line = (row: MetricsRow): string => `${JSON.stringify(row)}\n`;

/** Reads a metrics.jsonl; errors name the file and the line. */
export function readMetricsLog(file: string): MetricsLog {
  if (!existsSync(file)) throw new DistillError('E_NOT_FOUND', `metrics file ${file} not found`, { subject: file });
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  // The piece after the last newline: empty for a whole file, else a line still being written.
  const torn = lines.pop() ?? '';
  const rows: MetricsRow[] = [];
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    let raw: unknown;
    try {
      raw = JSON.parse(l);
    } catch (err) {
      throw new DistillError('E_DATA', `${file} line ${i + 1} is not valid JSON`, {
        subject: file,
        found: (err as Error).message,
        hint: 'only the last line of a log being written may be incomplete; restore the file or start a new run',
      });
    }
    const res = MetricsRowSchema.safeParse(raw);
    if (!res.success) {
      throw new DistillError('E_DATA', `${file} line ${i + 1} is not a metrics row`, {
        subject: file,
        expected: 'an object with a numeric "step" and numbers (or null) for the metrics',
        found: formatIssues(res.error.issues),
      });
    }
    rows.push(res.data);
  });
  return { rows, skipped: torn.trim() ? 1 : 0 };
}

/** Starts a metrics.jsonl holding `rows` (none for a fresh run, the kept ones for a resumed run), replacing it whole. */
export function writeMetricsLog(file: string, rows: MetricsRow[]): void {
  writeFileAtomic(file, rows.map(line).join(''));
}

/** Appends one step's row as a whole line. */
export function appendMetricsRow(file: string, row: MetricsRow): void {
  try {
    appendFileSync(file, line(row));
  } catch (err) {
    throw ioError(err, 'append to', file);
  }
}
