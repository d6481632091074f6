// Graph surgery on a teacher (input_ids int64 [B,T] → logits float [B,T,V]): appends
// Div(T) → LogSoftmax → TopK(k) → ids (int32 [B,T,k]), logp (float [B,T,k]), tail log(1 − Σ exp logp)
// (float [B,T]), V (int64 [1]), optionally Multinomial samples (int32 [B·T,S]) and optionally the log-prob of
// each position's next input id (float [B,T−1], for on-policy token-rkl), so only O(k) values per position
// leave ONNX Runtime.
import { DistillError } from '../../../core/errors.js';
import {
  decodeModel,
  describeTensors,
  ElemType,
  graphInputs,
  graphOutputs,
  OnnxGraph,
  opsetVersion,
  type ModelProto,
  type TensorInfo,
} from '../../../onnx/index.js';
import { optimumInputs, type ExtraInput } from './optimum.js';

export const INPUT_NAME = 'input_ids';
export const LOGITS_NAME = 'logits';
/** Oldest default-domain opset whose TopK has `largest`/`sorted` and whose ops we rely on. */
export const MIN_OPSET = 11;

export interface TeacherContract {
  input: TensorInfo;
  logits: TensorInfo;
  /** Inputs of a Hugging Face Optimum export the runner feeds (empty for the plain contract). */
  extraInputs: ExtraInput[];
  /** V when the logits shape states it; null when symbolic (found at run time). */
  vocabSize: number | null;
  opset: number;
}

/**
 * Checks the teacher contract; throws E_MODEL naming what is wrong and what was found. With `optimum`, the
 * inputs of a Hugging Face Optimum export (attention_mask, position_ids, past_key_values.*) are accepted too.
 */
export function checkTeacherContract(
  m: ModelProto,
  subject: string,
  opts: { optimum?: boolean } = {},
): TeacherContract {
  const inputs = graphInputs(m);
  const outputs = graphOutputs(m);
  const describe = describeTensors;
  const hint =
    'a teacher takes input_ids (int64 [batch, seq]) and returns logits (float [batch, seq, vocab]); rename the graph input/output or re-export the model';
  const input = inputs.find((i) => i.name === INPUT_NAME);
  if (!input)
    throw new DistillError('E_MODEL', `teacher ${subject} has no input "${INPUT_NAME}"`, {
      expected: `input ${INPUT_NAME} int64 [B, T]`,
      found: `inputs ${describe(inputs)}`,
      hint,
      subject,
    });
  if (input.elemType !== ElemType.INT64 || input.dims.length !== 2)
    throw new DistillError('E_MODEL', `teacher ${subject} has the wrong "${INPUT_NAME}"`, {
      expected: 'int64 [B, T]',
      found: describe([input]),
      hint,
      subject,
    });
  const others = inputs.filter((i) => i.name !== INPUT_NAME);
  const extraInputs = opts.optimum ? optimumInputs(others, subject, hint) : [];
  if (others.length && !opts.optimum)
    throw new DistillError('E_MODEL', `teacher ${subject} needs inputs besides "${INPUT_NAME}"`, {
      expected: `only ${INPUT_NAME}`,
      found: describe(others),
      hint,
      subject,
    });
  const logits = outputs.find((o) => o.name === LOGITS_NAME);
  if (!logits)
    throw new DistillError('E_MODEL', `teacher ${subject} has no output "${LOGITS_NAME}"`, {
      expected: `output ${LOGITS_NAME} float [B, T, V]`,
      found: `outputs ${describe(outputs)}`,
      hint,
      subject,
    });
  if (logits.elemType !== ElemType.FLOAT || logits.dims.length !== 3)
    throw new DistillError('E_MODEL', `teacher ${subject} has the wrong "${LOGITS_NAME}"`, {
      expected: 'float [B, T, V]',
      found: describe([logits]),
      hint,
      subject,
    });
  const opset = opsetVersion(m);
  if (opset < MIN_OPSET)
    throw new DistillError('E_MODEL', `teacher ${subject} uses an opset too old for the appended TopK`, {
      expected: `default-domain opset ≥ ${MIN_OPSET}`,
      found: String(opset),
      hint: 'convert the model to a newer opset (onnx.version_converter)',
      subject,
    });
  const v = logits.dims[2];
  return { input, logits, extraInputs, vocabSize: typeof v === 'number' ? v : null, opset };
}

export interface SurgeryOptions {
  k: number;
  temperature: number;
  /** Multinomial draws per position from softmax(logits / T); 0 = none. */
  samples?: number;
  /** Multinomial seed (ONNX Runtime seeds its generator once per session). */
  seed?: number;
  /** Accept a Hugging Face Optimum export; its extra inputs are listed in SurgeryOutputs.feeds. */
  optimum?: boolean;
  /** Also output the log-prob of each position's next input id (SurgeryOutputs.target). */
  targets?: boolean;
}

export interface SurgeryOutputs {
  /** Inputs besides input_ids the session must be fed (an Optimum export's). */
  feeds: ExtraInput[];
  ids: string;
  logp: string;
  tail: string;
  vocab: string;
  samples?: string;
  /** float [B, T−1]: log-softmax(logits / T)[b, t, input_ids[b, t + 1]]. */
  target?: string;
}

/** Returns a new model (the input proto is not touched) whose only outputs are the O(k) tensors. */
export function appendTopK(
  bytes: Uint8Array,
  subject: string,
  opts: SurgeryOptions,
): { bytes: Uint8Array; outputs: SurgeryOutputs; contract: TeacherContract } {
  const m = decodeModel(bytes, subject);
  const contract = checkTeacherContract(m, subject, { optimum: opts.optimum });
  if (!Number.isInteger(opts.k) || opts.k < 1)
    throw new DistillError('E_USAGE', 'invalid `topK`', {
      expected: 'an integer ≥ 1',
      found: String(opts.k),
      field: 'topK',
    });
  if (contract.vocabSize !== null && opts.k > contract.vocabSize)
    throw new DistillError('E_USAGE', "`topK` exceeds the teacher's vocabulary", {
      field: 'topK',
      expected: `k ≤ V = ${contract.vocabSize}`,
      found: `k = ${opts.k}`,
      subject,
    });
  if (!(opts.temperature > 0) || !Number.isFinite(opts.temperature))
    throw new DistillError('E_USAGE', 'invalid `temperature`', {
      field: 'temperature',
      expected: 'a finite number > 0',
      found: String(opts.temperature),
    });
  const g = OnnxGraph.edit(m);
  let x = LOGITS_NAME;
  if (opts.temperature !== 1) x = g.op('Div', [x, g.floatScalar(opts.temperature)]);
  const logp = g.op('LogSoftmax', [x], { axis: -1 });
  const topLogp = g.fresh('topk_logp');
  const topIds64 = g.fresh('topk_ids64');
  g.node('TopK', [logp, g.int64Tensor([1], [opts.k])], { axis: -1, largest: 1, sorted: 1 }, [topLogp, topIds64]);
  // int32 ids halve what leaves the session; every real vocabulary fits.
  const ids = g.op('Cast', [topIds64], { to: ElemType.INT32 }, g.fresh('topk_ids'));
  const mass =
    contract.opset >= 13
      ? g.op('ReduceSum', [g.op('Exp', [topLogp]), g.int64Tensor([1], [-1])], { keepdims: 0 })
      : g.op('ReduceSum', [g.op('Exp', [topLogp])], { axes: [-1], keepdims: 0 });
  // Rounding can push Σ exp slightly above 1; clamp so the tail is −inf, never NaN.
  const rest = g.op('Max', [g.op('Sub', [g.floatScalar(1), mass]), g.floatScalar(0)]);
  const tail = g.op('Log', [rest], {}, g.fresh('tail_logp'));
  const shape = g.op('Shape', [LOGITS_NAME]);
  const vocab = g.op('Slice', [shape, g.int64Tensor([1], [2]), g.int64Tensor([1], [3])], {}, g.fresh('vocab'));
  const outputs: SurgeryOutputs = { feeds: contract.extraInputs, ids, logp: topLogp, tail, vocab };
  g.output(ids, ElemType.INT32, ['B', 'T', opts.k]);
  g.output(topLogp, ElemType.FLOAT, ['B', 'T', opts.k]);
  g.output(tail, ElemType.FLOAT, ['B', 'T']);
  g.output(vocab, ElemType.INT64, [1]);
  const S = opts.samples ?? 0;
  if (S > 0) {
    const flat = g.op('Flatten', [logp], { axis: 2 });
    const attrs: Record<string, number | { float: number }> = { sample_size: S, dtype: ElemType.INT32 };
    if (opts.seed !== undefined) attrs.seed = { float: opts.seed };
    outputs.samples = g.op('Multinomial', [flat], attrs, g.fresh('samples'));
    g.output(outputs.samples, ElemType.INT32, ['BT', S]);
  }
  if (opts.targets) {
    outputs.target = appendTarget(g, logp, contract.opset);
    g.output(outputs.target, ElemType.FLOAT, ['B', 'T_minus_1']);
  }
  g.keepOutputs([
    ids,
    topLogp,
    tail,
    vocab,
    ...(outputs.samples ? [outputs.samples] : []),
    ...(outputs.target ? [outputs.target] : []),
  ]);
  return { bytes: g.encode(), outputs, contract };
}

/**
 * The exact log-prob of the token that follows each position, gathered from the full log-softmax in the graph:
 * input_ids[:, 1:] (int64 [B, T−1]) indexes logp[:, :T−1, :] along the vocabulary with GatherElements. The last
 * position has no next token and gets no entry.
 */
function appendTarget(g: OnnxGraph, logp: string, opset: number): string {
  const i64 = (v: number[]) => g.int64Tensor([v.length], v);
  const next = g.op('Slice', [INPUT_NAME, i64([1]), i64([Number.MAX_SAFE_INTEGER]), i64([1])]);
  const head = g.op('Slice', [logp, i64([0]), i64([-1]), i64([1])]);
  // Unsqueeze and Squeeze take their axes as an input from opset 13, as an attribute before.
  const index = opset >= 13 ? g.op('Unsqueeze', [next, i64([2])]) : g.op('Unsqueeze', [next], { axes: [2] });
  const picked = g.op('GatherElements', [head, index], { axis: 2 });
  const name = g.fresh('target_logp');
  return opset >= 13 ? g.op('Squeeze', [picked, i64([2])], {}, name) : g.op('Squeeze', [picked], { axes: [2] }, name);
}
