// A small ONNX graph builder over onnx-proto: float32/int64 initializers (raw little-endian data),
// nodes with int/ints/float attributes, typed inputs/outputs with symbolic dims; encodes a ModelProto.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

type Attr = number | number[] | { float: number };
type Dim = number | string;

export class OnnxGraphBuilder {
  private readonly nodes: any[] = [];
  private readonly initializers: any[] = [];
  private readonly inputs: any[] = [];
  private readonly outputs: any[] = [];
  private counter = 0;

  /** A fresh, unique tensor name with a readable prefix. */
  name(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  floatInit(name: string, dims: number[], data: Float32Array): string {
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: onnx.TensorProto.DataType.FLOAT,
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      }),
    );
    return name;
  }

  int64Init(name: string, values: number[], dims: number[] = [values.length]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: onnx.TensorProto.DataType.INT64,
        rawData: new Uint8Array(data.buffer),
      }),
    );
    return name;
  }

  /** Adds a node; returns its output names (one fresh name per output unless given). */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs: string[] | number = 1): string[] {
    const outs =
      typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.name(opType.toLowerCase())) : outputs;
    const attribute = Object.entries(attrs).map(([name, v]) => {
      if (Array.isArray(v))
        return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v });
      if (typeof v === 'object')
        return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v.float });
      return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v });
    });
    this.nodes.push(
      onnx.NodeProto.create({ opType, input: inputs, output: outs, name: this.name(`n_${opType}`), attribute }),
    );
    return outs;
  }

  /** Single-output shorthand. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.node(opType, inputs, attrs, 1)[0]!;
  }

  private valueInfo(name: string, elemType: number, dims: Dim[]): any {
    return onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({
        tensorType: onnx.TypeProto.Tensor.create({
          elemType,
          shape: onnx.TensorShapeProto.create({
            dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
          }),
        }),
      }),
    });
  }

  input(name: string, type: 'int64' | 'float', dims: Dim[]): string {
    this.inputs.push(
      this.valueInfo(name, type === 'int64' ? onnx.TensorProto.DataType.INT64 : onnx.TensorProto.DataType.FLOAT, dims),
    );
    return name;
  }

  output(name: string, type: 'int64' | 'float', dims: Dim[]): void {
    this.outputs.push(
      this.valueInfo(name, type === 'int64' ? onnx.TensorProto.DataType.INT64 : onnx.TensorProto.DataType.FLOAT, dims),
    );
  }

  encode(opts: { graphName: string; opset: number; producer: string; metadata?: Record<string, string> }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: opts.producer,
      opsetImport: [{ domain: '', version: opts.opset }],
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: onnx.GraphProto.create({
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      }),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
