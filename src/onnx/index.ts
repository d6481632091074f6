// Public surface of src/onnx: ModelProto I/O and the one graph builder, shared by the teacher's graph
// surgery and the student's ONNX export (a neutral layer: it imports only src/core).
export {
  decodeModel,
  describeTensors,
  elemTypeName,
  encodeModel,
  graphInputs,
  graphOutputs,
  opsetVersion,
  ElemType,
} from './proto.js';
export type { ModelProto, TensorInfo } from './proto.js';
export { OnnxGraph } from './graph.js';
export type { AttrValue, CreateGraphOptions, Dim, ElemTypeLike } from './graph.js';
