// The loss registry and the public loss API: computeLoss (explicit logits) and lmHeadLoss (fused LM head),
// the runtime (validation, float64 reference, native dispatch) bound to it.
// Built-in losses live one per folder (losses/<id>/index.ts); only this index imports them.
import { Registry } from '../src/core/registry.js';
import type { LossDefinition } from './define.js';
import { computeLossWith, type ComputeLossInput, type ComputeLossResult } from './runtime/compute.js';
import { lmHeadLossWith, type LmHeadLossInput, type LmHeadLossResult } from './runtime/lmhead.js';
import ce from './ce/index.js';
import forwardKl from './forward-kl/index.js';
import reverseKl from './reverse-kl/index.js';
import jsd from './jsd/index.js';
import skewKl from './skew-kl/index.js';
import tvd from './tvd/index.js';
import sampled from './sampled/index.js';

export const losses = new Registry<LossDefinition>('loss');
for (const def of [ce, forwardKl, reverseKl, jsd, skewKl, tvd, sampled]) losses.register(def);

/** Fused loss + d loss / d logits over N × V logits (see ComputeLossInput). */
export function computeLoss(input: ComputeLossInput): ComputeLossResult {
  return computeLossWith(losses, input);
}

/** Fused LM head: loss, dHidden and dWeight without materializing N × V logits. */
export function lmHeadLoss(input: LmHeadLossInput): LmHeadLossResult {
  return lmHeadLossWith(losses, input);
}

export { roundToBf16 } from './runtime/compute.js';
export { teacherTop1Labels } from './runtime/hard.js';
export { TAIL_FLOOR } from './runtime/reference.js';
export type { ComputeLossInput, ComputeLossResult, LossBackend } from './runtime/compute.js';
export type { LmHeadLossInput, LmHeadLossResult } from './runtime/lmhead.js';
export type { LossDefinition, LossKind, Support, LossParams, DivergenceTerm } from './define.js';
export type { TeacherInput, SamplesInput, CommonOptions } from './runtime/prepare.js';
