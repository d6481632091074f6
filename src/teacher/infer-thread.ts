// Worker-thread entry: owns one ONNX Runtime session of the surgered teacher and runs batches
// [B,T] → top-k, so the main thread encodes, hashes and uploads the previous batch meanwhile.
import { parentPort, workerData } from 'node:worker_threads';
import { createSession, runTopK, type SessionOptions } from './session.js';
import type { SurgeryOutputs } from './surgery.js';

interface Init {
  model: Uint8Array;
  subject: string;
  outputs: SurgeryOutputs;
  session: SessionOptions;
}

const init = workerData as Init;
const port = parentPort!;
const ready = createSession(init.model, init.subject, init.session);
ready.then(
  () => port.postMessage({ type: 'ready' }),
  (e) => port.postMessage({ type: 'error', id: -1, error: serialize(e) }),
);

function serialize(e: unknown): unknown {
  const err = e as { name?: string; message?: string; code?: string; details?: unknown };
  return { name: err.name, message: err.message, code: err.code, details: err.details ? { ...(err.details as object), cause: undefined } : undefined };
}

port.on('message', async (msg: { id: number; ids: BigInt64Array; B: number; T: number }) => {
  try {
    const session = await ready;
    const r = await runTopK(session, init.outputs, msg.ids, msg.B, msg.T);
    // Copies into fresh buffers so they can be transferred (ORT's may be shared or pooled).
    const out = { ids: r.ids.slice(), logp: r.logp.slice(), tail: r.tail.slice(), samples: r.samples?.slice(), vocab: r.vocab };
    const transfer = [out.ids.buffer, out.logp.buffer, out.tail.buffer, ...(out.samples ? [out.samples.buffer] : [])] as ArrayBuffer[];
    port.postMessage({ type: 'result', id: msg.id, result: out }, transfer);
  } catch (e) {
    port.postMessage({ type: 'error', id: msg.id, error: serialize(e) });
  }
});
