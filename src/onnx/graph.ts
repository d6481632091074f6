// The one ONNX graph builder: writes a new model (student export, synthetic teachers) or appends to an
// existing one (the teacher runner's graph surgery). Float32/int64 initializers as raw little-endian data,
// nodes with int/ints/float/floats/string attributes, typed inputs/outputs with static or symbolic dims.
import type onnxProto from 'onnx-proto';
import { ElemType, encodeModel, num, onnx, type ModelProto } from './proto.js';

type P = typeof onnxProto.onnx;
/** A graph whose lists are present (the builder fills in missing ones). */
interface Graph extends onnxProto.onnx.IGraphProto {
  node: onnxProto.onnx.INodeProto[];
  initializer: onnxProto.onnx.ITensorProto[];
  input: onnxProto.onnx.IValueInfoProto[];
  output: onnxProto.onnx.IValueInfoProto[];
}

export type AttrValue = number | number[] | { float: number } | { floats: number[] } | { string: string };
export type Dim = number | string;
/** An element type: a TensorProto.DataType value, or the two names the exporters use. */
export type ElemTypeLike = number | 'float' | 'int64';

const elemType = (t: ElemTypeLike): number => (t === 'float' ? ElemType.FLOAT : t === 'int64' ? ElemType.INT64 : t);

function attribute(name: string, v: AttrValue): InstanceType<P['AttributeProto']> {
  const A = onnx.AttributeProto.AttributeType;
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: A.INTS, ints: v });
  if (typeof v === 'number') return onnx.AttributeProto.create({ name, type: A.INT, i: v });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: A.FLOAT, f: v.float });
  if ('floats' in v) return onnx.AttributeProto.create({ name, type: A.FLOATS, floats: v.floats });
  return onnx.AttributeProto.create({ name, type: A.STRING, s: new TextEncoder().encode(v.string) });
}

function valueInfo(name: string, type: number, dims: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: type,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        }),
      }),
    }),
  });
}

export interface CreateGraphOptions {
  /** Default-domain opset (default 17). */
  opset?: number;
  producer?: string;
  graphName?: string;
  /** Model metadata_props. */
  metadata?: Record<string, string>;
}

/**
 * Builds or extends one graph. Every name it makes is `<prefix><hint>_<n>`: the prefix is empty for a new
 * model and `distill/` (lengthened until unused) when editing someone else's, so appended tensors cannot
 * collide with theirs.
 */
export class OnnxGraph {
  private counter = 0;
  private readonly graph: Graph;

  private constructor(
    readonly model: ModelProto,
    private readonly prefix: string,
  ) {
    const g = (model.graph ??= onnx.GraphProto.create());
    g.node ??= [];
    g.initializer ??= [];
    g.input ??= [];
    g.output ??= [];
    this.graph = g as Graph;
  }

  /** A new, empty model. */
  static create(opts: CreateGraphOptions = {}): OnnxGraph {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: opts.producer ?? 'distillery',
      opsetImport: [{ domain: '', version: opts.opset ?? 17 }],
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: onnx.GraphProto.create({
        name: opts.graphName ?? 'graph',
        node: [],
        initializer: [],
        input: [],
        output: [],
      }),
    });
    return new OnnxGraph(model, '');
  }

  /** Appends to an existing model (modified in place: decode a fresh copy to keep the original). */
  static edit(model: ModelProto, prefix = 'distill'): OnnxGraph {
    const used = new Set<string>();
    for (const n of model.graph?.node ?? []) for (const o of n.output ?? []) used.add(o);
    let p = prefix;
    while ([...used].some((u) => u.startsWith(`${p}/`))) p += '_';
    return new OnnxGraph(model, `${p}/`);
  }

  /** A fresh, unique tensor name with a readable hint. */
  fresh(hint: string): string {
    return `${this.prefix}${hint}_${this.counter++}`;
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
    this.graph.node.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outs,
        name: this.fresh(`n_${opType}`),
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outs;
  }

  /** Single-output shorthand. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const [out] = this.node(opType, inputs, attrs, output ? [output] : 1);
    if (out === undefined) throw new Error(`OnnxGraph.op(${opType}) made no output`);
    return out;
  }

  floatTensor(dims: number[], data: Float32Array, name = this.fresh('const')): string {
    this.graph.initializer.push(
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
    this.graph.initializer.push(
      onnx.TensorProto.create({ name, dims, dataType: ElemType.INT64, rawData: new Uint8Array(data.buffer) }),
    );
    return name;
  }

  floatScalar(v: number): string {
    return this.floatTensor([], Float32Array.of(v));
  }

  input(name: string, type: ElemTypeLike, dims: Dim[]): string {
    this.graph.input.push(valueInfo(name, elemType(type), dims));
    return name;
  }

  output(name: string, type: ElemTypeLike, dims: Dim[]): void {
    this.graph.output.push(valueInfo(name, elemType(type), dims));
  }

  /** Drops every graph output except those named (their producers stay; ONNX Runtime prunes dead nodes). */
  keepOutputs(names: string[]): void {
    this.graph.output = this.graph.output.filter((o) => names.includes(o.name ?? ''));
  }

  /** Raises the default-domain opset to at least v. */
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
