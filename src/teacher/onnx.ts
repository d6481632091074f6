// ONNX protobuf utilities over onnx-proto: decode/encode ModelProto, inspect graph inputs/outputs
// (element type and dims), and an editor that appends nodes, constants and outputs to a graph.
import { createHash } from 'node:crypto';
import onnxProto from 'onnx-proto';
import { DistillError } from '../core/errors.js';

const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;

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

export interface TensorInfo {
  name: string;
  elemType: number;
  /** "float", "int64", … */
  type: string;
  /** Static sizes as numbers, symbolic ones as their name, unknown ones as null. */
  dims: Array<number | string | null>;
}

/** protobufjs returns int64 fields as number or Long depending on the build; normalise to number. */
const num = (v: unknown): number =>
  typeof v === 'number' ? v : v && typeof (v as any).toNumber === 'function' ? (v as any).toNumber() : Number(v);

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

export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

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
  return { name: v.name ?? '', elemType, type: ELEM_NAMES[elemType] ?? `type ${elemType}`, dims };
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

type AttrValue = number | number[] | { float: number } | { floats: number[] } | { string: string };

function attribute(name: string, v: AttrValue): onnxProto.onnx.AttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: A.INTS, ints: v });
  if (typeof v === 'number') return onnx.AttributeProto.create({ name, type: A.INT, i: v });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: A.FLOAT, f: v.float });
  if ('floats' in v) return onnx.AttributeProto.create({ name, type: A.FLOATS, floats: v.floats });
  return onnx.AttributeProto.create({ name, type: A.STRING, s: new TextEncoder().encode(v.string) });
}

function valueInfo(name: string, elemType: number, dims: Array<number | string>): onnxProto.onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

/**
 * Appends to a graph (an existing model, or a new one from `GraphEditor.create`). Names it makes carry
 * a prefix so they cannot collide with the user's tensors.
 */
export class GraphEditor {
  private counter = 0;
  constructor(
    readonly model: ModelProto,
    private readonly prefix = 'distill',
  ) {
    const used = new Set<string>();
    for (const n of model.graph!.node ?? []) for (const o of n.output ?? []) used.add(o);
    while ([...used].some((u) => u.startsWith(`${this.prefix}/`))) this.prefix += '_';
  }

  static create(opts: { opset?: number; producer?: string; graphName?: string } = {}): GraphEditor {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: opts.producer ?? 'distillery',
      opsetImport: [{ domain: '', version: opts.opset ?? 17 }],
      graph: onnx.GraphProto.create({
        name: opts.graphName ?? 'graph',
        node: [],
        initializer: [],
        input: [],
        output: [],
      }),
    });
    return new GraphEditor(model, 'g');
  }

  fresh(hint: string): string {
    return `${this.prefix}/${hint}_${this.counter++}`;
  }

  /** Adds a node; returns its outputs (fresh names unless given). */
  node(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs: number | string[] = 1,
  ): string[] {
    const outs =
      typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase())) : outputs;
    this.model.graph!.node!.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outs,
        name: this.fresh(`node_${opType}`),
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outs;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    return this.node(opType, inputs, attrs, output ? [output] : 1)[0]!;
  }

  floatTensor(dims: number[], data: Float32Array, name = this.fresh('const')): string {
    this.model.graph!.initializer!.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: ElemType.FLOAT,
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      }),
    );
    return name;
  }

  int64Tensor(dims: number[], values: number[], name = this.fresh('const')): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.model.graph!.initializer!.push(
      onnx.TensorProto.create({ name, dims, dataType: ElemType.INT64, rawData: new Uint8Array(data.buffer) }),
    );
    return name;
  }

  floatScalar(v: number): string {
    return this.floatTensor([], Float32Array.of(v));
  }

  input(name: string, elemType: number, dims: Array<number | string>): string {
    this.model.graph!.input!.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: Array<number | string>): void {
    this.model.graph!.output!.push(valueInfo(name, elemType, dims));
  }

  /** Drops every graph output except those named (their producers stay; ONNX Runtime prunes dead nodes). */
  keepOutputs(names: string[]): void {
    const g = this.model.graph!;
    g.output = (g.output ?? []).filter((o) => names.includes(o.name ?? ''));
  }

  /** Raises the default-domain opset to at least v (the ops we append exist unchanged from opset 13 to 21). */
  requireOpset(v: number): void {
    const imports = (this.model.opsetImport ??= []);
    const o = imports.find((x) => !x.domain || x.domain === 'ai.onnx');
    if (!o) imports.push(onnx.OperatorSetIdProto.create({ domain: '', version: v }));
    else if (num(o.version) < v) o.version = v;
  }

  encode(): Uint8Array {
    return encodeModel(this.model);
  }
}
