// ONNX ModelProto I/O over onnx-proto: decode (with a DistillError naming the file), encode, and the graph's
// inputs/outputs as element type and dims (static sizes, symbolic names, or unknown).
import onnxProto from 'onnx-proto';
import { DistillError } from '../core/errors.js';

const { onnx } = onnxProto;
export { onnx };
export type ModelProto = onnxProto.onnx.ModelProto;

/** TensorProto.DataType values (onnx/onnx.proto3). */
export const ElemType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;
const ELEM_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(ElemType).map(([k, v]) => [v, k.toLowerCase()]),
);

export const elemTypeName = (t: number): string => ELEM_NAMES[t] ?? `type ${t}`;

export interface TensorInfo {
  name: string;
  elemType: number;
  /** "float", "int64", … */
  type: string;
  /** Static sizes as numbers, symbolic ones as their name, unknown ones as null. */
  dims: Array<number | string | null>;
}

interface LongLike {
  toNumber(): number;
}
const isLong = (v: unknown): v is LongLike =>
  typeof v === 'object' && v !== null && typeof (v as { toNumber?: unknown }).toNumber === 'function';

/** protobufjs returns int64 fields as number or Long depending on the build; normalise to number. */
export const num = (v: unknown): number => (typeof v === 'number' ? v : isLong(v) ? v.toNumber() : Number(v));

export function decodeModel(bytes: Uint8Array, subject: string): ModelProto {
  let m: ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new DistillError('E_MODEL', `cannot parse ONNX model ${subject}`, {
      expected: 'an ONNX ModelProto file',
      found: (e as Error).message,
      subject,
      cause: e,
    });
  }
  if (!m.graph || !m.graph.node?.length || !m.graph.output?.length) {
    throw new DistillError('E_MODEL', `${subject} is not an ONNX model with a graph`, {
      expected: 'a ModelProto with nodes and outputs',
      found: `${m.graph?.node?.length ?? 0} nodes, ${m.graph?.output?.length ?? 0} outputs`,
      subject,
    });
  }
  return m;
}

export function encodeModel(m: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(m).finish();
}

function info(v: onnxProto.onnx.IValueInfoProto): TensorInfo {
  const t = v.type?.tensorType;
  const elemType = t?.elemType ?? 0;
  const dims = (t?.shape?.dim ?? []).map((d) =>
    d.dimValue !== undefined && d.dimValue !== null && num(d.dimValue) > 0
      ? num(d.dimValue)
      : d.dimParam
        ? d.dimParam
        : null,
  );
  return { name: v.name ?? '', elemType, type: elemTypeName(elemType), dims };
}

/** Graph inputs the caller must feed (initializers listed as inputs by old exporters are excluded). */
export function graphInputs(m: ModelProto): TensorInfo[] {
  const inits = new Set((m.graph?.initializer ?? []).map((i) => i.name));
  return (m.graph?.input ?? []).filter((i) => !inits.has(i.name ?? '')).map(info);
}

export function graphOutputs(m: ModelProto): TensorInfo[] {
  return (m.graph?.output ?? []).map(info);
}

/** The default-domain opset version the model imports. */
export function opsetVersion(m: ModelProto): number {
  const o = (m.opsetImport ?? []).find((x) => !x.domain || x.domain === 'ai.onnx');
  return o ? num(o.version) : 0;
}

/** "name type [d0, d1, …]" for messages. */
export const describeTensors = (ts: TensorInfo[]): string =>
  ts.map((t) => `${t.name} ${t.type} [${t.dims.map((d) => d ?? '?').join(', ')}]`).join('; ') || 'none';
