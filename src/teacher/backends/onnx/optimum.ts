// Hugging Face Optimum exports for text generation: inputs besides input_ids that a teacher run feeds with
// neutral values — attention_mask of ones [B, T], position_ids 0..T−1 [B, T], and an empty past
// (past_key_values.N.key/value with a zero-length sequence axis) — so they score like the plain contract.
// Names and axes from optimum/exporters/onnx/config.py (TextDecoderOnnxConfig.inputs,
// TextDecoderWithPositionIdsOnnxConfig) and base.py (OnnxConfigWithPast.add_past_key_values).
import ort from 'onnxruntime-node';
import { DistillError } from '../../../core/errors.js';
import { describeTensors, ElemType, type TensorInfo } from '../../../onnx/index.js';

export interface ExtraInput {
  name: string;
  role: 'attention_mask' | 'position_ids' | 'past';
  elemType: number;
  dims: Array<number | string | null>;
}

const PAST = /^past_key_values\.\d+\.(key|value)$/;
const INTS: number[] = [ElemType.INT64, ElemType.INT32];
const FLOATS: number[] = [ElemType.FLOAT, ElemType.FLOAT16];

/**
 * The Optimum inputs among `others` (every graph input but input_ids); throws E_MODEL naming the first input
 * that is none of them, or a past whose axes are not [batch, static…, past sequence, static…].
 */
export function optimumInputs(others: TensorInfo[], subject: string, hint: string): ExtraInput[] {
  return others.map((t): ExtraInput => {
    const role =
      t.name === 'attention_mask'
        ? 'attention_mask'
        : t.name === 'position_ids'
          ? 'position_ids'
          : PAST.test(t.name)
            ? 'past'
            : undefined;
    const typeOk = role === 'past' ? FLOATS.includes(t.elemType) : INTS.includes(t.elemType);
    if (!role || !typeOk)
      throw new DistillError('E_MODEL', `teacher ${subject} needs an input the runner cannot feed`, {
        expected:
          'only input_ids, or a Hugging Face Optimum export (attention_mask, position_ids, past_key_values.N.key/value)',
        found: describeTensors([t]),
        hint,
        subject,
      });
    if (role === 'past') {
      const batch = t.dims.filter((d) => typeof d === 'string' && /batch/.test(d)).length;
      const seq = t.dims.filter((d) => typeof d === 'string' && /sequence/.test(d)).length;
      const fixed = t.dims.filter((d) => typeof d === 'number').length;
      if (batch !== 1 || seq !== 1 || fixed !== t.dims.length - 2)
        throw new DistillError('E_MODEL', `teacher ${subject} has a past input whose axes cannot be told apart`, {
          expected:
            'one batch axis, one past sequence axis and static sizes (batch_size, heads, past_sequence_length, head dim)',
          found: describeTensors([t]),
          subject,
        });
    }
    return { name: t.name, role, elemType: t.elemType, dims: t.dims };
  });
}

const cache = new Map<string, Record<string, ort.Tensor>>();

/** The feeds besides input_ids for a batch [B, T] (made once per shape: they are the same for every batch). */
export function extraFeeds(inputs: ExtraInput[], B: number, T: number): Record<string, ort.Tensor> {
  if (!inputs.length) return {};
  const key = `${B}x${T}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const feeds: Record<string, ort.Tensor> = {};
  for (const x of inputs) {
    if (x.role === 'past') {
      const dims = x.dims.map((d) => (typeof d === 'number' ? d : d !== null && /batch/.test(d) ? B : 0));
      feeds[x.name] =
        x.elemType === ElemType.FLOAT16
          ? new ort.Tensor('float16', new Uint16Array(0), dims)
          : new ort.Tensor('float32', new Float32Array(0), dims);
      continue;
    }
    // The mask covers past + present = T positions, all attended; positions count from 0 in each sequence.
    const value = (i: number) => (x.role === 'attention_mask' ? 1 : i % T);
    feeds[x.name] =
      x.elemType === ElemType.INT64
        ? new ort.Tensor(
            'int64',
            BigInt64Array.from({ length: B * T }, (_, i) => BigInt(value(i))),
            [B, T],
          )
        : new ort.Tensor(
            'int32',
            Int32Array.from({ length: B * T }, (_, i) => value(i)),
            [B, T],
          );
  }
  if (cache.size > 8) cache.clear();
  cache.set(key, feeds);
  return feeds;
}
