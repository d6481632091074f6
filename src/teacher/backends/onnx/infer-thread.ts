// Worker-thread entry: owns one ONNX Runtime session of the surgered teacher and runs batches
// [B,T] → top-k, so the main thread encodes, hashes and uploads the previous batch meanwhile.
import { parentPort, workerData } from 'node:worker_threads';
import { createSession, runTopK, type SessionOptions } from './session.js';
import type { SurgeryOutputs } from './surgery.js';
import { toWireError } from '../wire.js';
import type { RunResult, ThreadMessage } from './thread.js';

interface Init {
  model: Uint8Array;
  subject: string;
  outputs: SurgeryOutputs;
  session: SessionOptions;
  /**
   * Batch shape run twice on token 0 before `ready`: ONNX Runtime grows its memory arena on the first
   * run and allocates the planned memory pattern on the second (≈ 0.25 s of page faults each on the
   * 2-core machine), so neither lands in the pipeline.
   */
  warmup?: { B: number; T: number };
}

const init = workerData as Init;
if (!parentPort) throw new Error('infer-thread.ts runs as a worker thread (started by InferenceThread)');
const port = parentPort;
const send = (m: ThreadMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
const ready = (async () => {
  const session = await createSession(init.model, init.subject, init.session);
  if (init.warmup) {
    const { B, T } = init.warmup;
    for (let i = 0; i < 2; i++) await runTopK(session, init.outputs, new BigInt64Array(B * T), B, T);
  }
  return session;
})();
ready.then(
  () => send({ type: 'ready' }),
  (e) => send({ type: 'error', id: -1, error: toWireError(e) }),
);

/**
 * The binding returns each output in an ArrayBuffer of its own, which moves to the main thread as
 * is; anything else (a view into a larger or shared buffer) is copied first.
 */
function movable<A extends Int32Array | Float32Array>(a: A, transfer: ArrayBuffer[]): A {
  const own =
    a.buffer instanceof ArrayBuffer &&
    a.byteOffset === 0 &&
    a.byteLength === a.buffer.byteLength &&
    !transfer.includes(a.buffer);
  const out = own ? a : (a.slice() as A);
  transfer.push(out.buffer as ArrayBuffer);
  return out;
}

interface RunMsg {
  id: number;
  /** int64 [nSeq·T] */
  ids: BigInt64Array;
  nSeq: number;
  T: number;
  /** Sequences per session.run. */
  B: number;
}

// One message carries several session runs (see MESSAGE_POSITIONS in pipeline.ts): each message costs the
// main thread a wake-up and a deserialization, so fewer, larger ones leave more of the CPU to inference.
// Messages are served strictly in order, one after the other: interleaving their runs would finish the
// queued messages together, in waves, and the session would wait between waves for the next ones.
async function serve(msg: RunMsg): Promise<void> {
  try {
    const session = await ready;
    const parts: RunResult[] = [];
    // The input buffer goes back too, for a later message.
    const transfer: ArrayBuffer[] = [msg.ids.buffer as ArrayBuffer];
    for (let s = 0; s < msg.nSeq; s += msg.B) {
      const b = Math.min(msg.B, msg.nSeq - s);
      const r = await runTopK(session, init.outputs, msg.ids.subarray(s * msg.T, (s + b) * msg.T), b, msg.T);
      parts.push({
        ids: movable(r.ids, transfer),
        logp: movable(r.logp, transfer),
        tail: movable(r.tail, transfer),
        ...(r.samples ? { samples: movable(r.samples, transfer) } : {}),
        ...(r.target ? { target: movable(r.target, transfer) } : {}),
        vocab: r.vocab,
        nSeq: b,
      });
    }
    send({ type: 'result', id: msg.id, result: { parts, input: msg.ids } }, transfer);
  } catch (e) {
    send({ type: 'error', id: msg.id, error: toWireError(e) });
  }
}

let queue: Promise<void> = Promise.resolve();
port.on('message', (msg: RunMsg) => {
  queue = queue.then(() => serve(msg));
});
