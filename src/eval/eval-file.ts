// eval.json, what `distill eval` writes beside a checkpoint and `distill report` reads: held-out metrics of
// one student (and of its teacher). NaN metrics (no teacher) are written as null and read back as NaN;
// the reader also takes files that lack the optional fields (docs/reports.md lists the defaults).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DistillError } from '../core/errors.js';
import { MoeLayerMetricsSchema } from '../core/moe.js';
import { formatIssues, jsonNumber } from '../core/schema.js';
import { writeFileAtomic } from '../store/index.js';

/** Per-bin counts behind the ECE, for reliability diagrams (an empty bin has NaN accuracy and confidence). */
export const CalibrationBinSchema = z.object({
  lo: z.number(),
  hi: z.number(),
  count: z.number(),
  accuracy: jsonNumber,
  confidence: jsonNumber,
});
export type CalibrationBin = z.infer<typeof CalibrationBinSchema>;

export const EvalFileSchema = z.object({
  /** Default when absent: the run folder's name. */
  name: z.string().optional(),
  /** The CE-only baseline (trained without a cache). */
  baseline: z.boolean().default(false),
  heldOutCE: z.number(),
  perplexity: jsonNumber,
  agreement: jsonNumber,
  klToTeacher: jsonNumber,
  ece: jsonNumber,
  accuracy: jsonNumber,
  positions: jsonNumber,
  params: jsonNumber,
  /** Parameters one token uses (less than params for a mixture-of-experts student). */
  activeParams: jsonNumber.optional(),
  /** MoE students: the routing metrics of each MoE layer over the held-out tokens. */
  moe: z.array(MoeLayerMetricsSchema).optional(),
  /** Held-out positions per second through the student (forward + LM head). */
  tokensPerSecond: jsonNumber,
  teacher: z
    .object({
      heldOutCE: z.number(),
      perplexity: jsonNumber,
      model: z.string().optional(),
      tokensPerSecond: jsonNumber,
      /** Total and active parameters, when the teacher is a Distillery export (its distillery.config). */
      params: z.number().optional(),
      activeParams: z.number().optional(),
    })
    .nullish(),
  /** Where the teacher support came from, and its size. */
  support: z.object({ source: z.enum(['cache', 'teacher']), k: z.number() }).optional(),
  cache: z.object({ uri: z.string().optional(), bytesPerPosition: jsonNumber }).nullish(),
  calibration: z.array(CalibrationBinSchema).default([]),
  data: z.string().optional(),
  /** What the metrics were measured on: the held-out dataset's content hash and shape. */
  heldOut: z.object({ sha256: z.string(), sequences: z.number(), seqLen: z.number() }).optional(),
  /** The teacher agreement and KL compare against: the cache's teacher, else the ONNX model given. */
  reference: z.object({ name: z.string(), sha256: z.string(), source: z.enum(['cache', 'model']) }).optional(),
  /** Standard error of heldOutCE over held-out sequences (src/eval/uncertainty.ts). */
  heldOutCEStdErr: jsonNumber.optional(),
  /** Per held-out sequence: summed NLL and scored positions, for paired comparisons between students. */
  sequenceSums: z.object({ nll: z.array(z.number()), positions: z.array(z.number()) }).optional(),
  checkpoint: z.string().optional(),
  seconds: jsonNumber,
});
export type EvalReport = z.infer<typeof EvalFileSchema>;

/** Reads and validates an eval.json; errors name the file and every bad field. */
export function readEvalFile(file: string): EvalReport {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DistillError('E_EVAL', `eval file ${file} is not valid JSON`, {
      subject: file,
      found: (err as Error).message,
    });
  }
  const res = EvalFileSchema.safeParse(raw);
  if (!res.success) {
    throw new DistillError('E_EVAL', `eval file ${file} is malformed`, {
      subject: file,
      hint: formatIssues(res.error.issues),
    });
  }
  return res.data;
}

/** Writes eval.json through a temporary name, so a failed write leaves no whole-looking file. */
export function writeEvalFile(file: string, report: EvalReport): void {
  writeFileAtomic(file, `${JSON.stringify(report, null, 2)}\n`);
}
