// trainer-state.json, the last file of a checkpoint folder and its commit: the SHA-256 of the other files,
// and everything the trainer needs to continue exactly (step, data cursor, run settings, schedule state).
// Evaluation reads it too (a run trained without a cache is the CE-only baseline).
import { z } from 'zod';

export const CHECKPOINT_FORMAT = 'distillery-student/1';

/** Where the next batch starts, so a resumed run reads the same batches. */
export const DataCursorSchema = z.object({
  seed: z.number(),
  epoch: z.number().int().min(0),
  position: z.number().int().min(0),
  /** Extra state a cache reader needs to resume (its manifest hash), opaque to the trainer. */
  source: z.record(z.string(), z.unknown()).optional(),
});
export type DataCursor = z.infer<typeof DataCursorSchema>;

/** The run settings that must not change across a resume (anything else may). */
export const RunSignatureSchema = z.object({
  steps: z.number().int(),
  batchSize: z.number().int(),
  gradAccum: z.number().int(),
  seed: z.number(),
  /** SHA-256 of the token dataset. */
  dataset: z.string(),
  /** Fingerprint of the logit cache; null for a CE-only run. */
  cache: z.string().nullable(),
});
export type RunSignature = z.infer<typeof RunSignatureSchema>;

/**
 * A student's on-policy stream (runs with a live teacher): its sampler, where its next prompts start in the
 * dataset, and the prompt/generation lengths a resume must keep. Absent in runs without a live teacher.
 */
export const OnPolicyStateSchema = z.object({
  sampler: z.object({ kind: z.literal('mulberry32'), state: z.number().int().min(0).max(0xffffffff) }),
  cursor: z.object({ epoch: z.number().int().min(0), position: z.number().int().min(0) }),
  promptTokens: z.number().int().min(1),
  newTokens: z.number().int().min(1),
  /** On-policy optimizer steps taken so far. */
  steps: z.number().int().min(0),
  /** The on-policy loss the steps so far used (absent in checkpoints written before it was recorded). */
  loss: z.string().optional(),
});
export type OnPolicyState = z.infer<typeof OnPolicyStateSchema>;

export const TrainerStateSchema = z.object({
  format: z.string(),
  /** Optimizer steps done; the next step to run. */
  step: z.number().int().min(0),
  totalSteps: z.number().int().min(1),
  run: RunSignatureSchema,
  cursor: DataCursorSchema,
  tokensSeen: z.number().min(0),
  lr: z.object({ lr: z.number(), minLr: z.number(), warmupSteps: z.number().int() }),
  optimizer: z.object({
    clipNorm: z.number(),
    weightDecay: z.number(),
    beta1: z.number(),
    beta2: z.number(),
    eps: z.number(),
  }),
  student: z.object({
    name: z.string(),
    loss: z.string(),
    support: z.string(),
    temperature: z.number(),
    schedule: z.string().nullable(),
  }),
  /** The schedule runner's state (schedules/runtime/runner.ts validates it on restore); null without a schedule. */
  schedule: z.unknown(),
  /** MoE students: per MoE layer and expert, the optimizer steps in a row it received no token (dead-expert flag). */
  moe: z.object({ idleSteps: z.array(z.array(z.number().int().min(0))) }).optional(),
  onPolicy: OnPolicyStateSchema.optional(),
  /** SHA-256 of each other file of the folder, by file name. */
  files: z.record(z.string(), z.string()),
});
export type TrainerState = z.infer<typeof TrainerStateSchema>;

/** What the trainer hands to saveCheckpoint; the format and the file hashes are added there. */
export type TrainerStateInput = Omit<TrainerState, 'format' | 'files'>;
