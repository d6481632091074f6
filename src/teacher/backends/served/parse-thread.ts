// Reply parser thread: the reading of a scoring reply into top-k rows (ids, logp, tail, and when asked the
// next-token log-probs) runs here, off the thread that talks HTTP and writes the cache: the protocol's fast byte
// reader when it has one and takes the reply, else JSON.parse and readScore; the rows go back as transferred
// typed arrays.
import { parentPort } from 'node:worker_threads';
import { ReplyError, type ScoreContext, type WireProtocol } from './protocol.js';
import { sglang } from './sglang.js';
import { vllm } from './vllm.js';

export interface ParseJob {
  id: number;
  kind: WireProtocol['kind'];
  /** The reply's UTF-8 bytes. */
  body: Uint8Array;
  ctx: ScoreContext;
}

export type ParseDone =
  | { id: number; ok: true; ids: Int32Array; logp: Float32Array; tail: Float32Array; target?: Float32Array }
  | { id: number; ok: false; kind: 'reply' | 'json'; message: string };

if (!parentPort) throw new Error('parse-thread.ts runs as a worker thread (started by ParserPool)');
const port = parentPort;
const protocols = { vllm, sglang };
const decoder = new TextDecoder();

port.on('message', (job: ParseJob) => {
  const { ctx } = job;
  const n = ctx.nSeq * ctx.T;
  const out = {
    ids: new Int32Array(n * ctx.k),
    logp: new Float32Array(n * ctx.k),
    tail: new Float32Array(n),
    ...(ctx.tokens ? { target: new Float32Array(n) } : {}),
  };
  const protocol = protocols[job.kind];
  if (protocol.scanScore)
    try {
      protocol.scanScore(job.body, ctx, out, 0);
      return done(job.id, out);
    } catch {
      // Not in the form the fast reader takes, or wrong: JSON.parse and readScore below say what is wrong.
    }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(job.body));
  } catch (e) {
    return port.postMessage({ id: job.id, ok: false, kind: 'json', message: (e as Error).message } satisfies ParseDone);
  }
  try {
    protocol.readScore(json, ctx, out, 0);
  } catch (e) {
    const kind = e instanceof ReplyError ? 'reply' : 'json';
    return port.postMessage({ id: job.id, ok: false, kind, message: (e as Error).message } satisfies ParseDone);
  }
  done(job.id, out);
});

function done(
  id: number,
  out: {
    ids: Int32Array<ArrayBuffer>;
    logp: Float32Array<ArrayBuffer>;
    tail: Float32Array<ArrayBuffer>;
    target?: Float32Array<ArrayBuffer>;
  },
): void {
  port.postMessage({ id, ok: true, ...out } satisfies ParseDone, [
    out.ids.buffer,
    out.logp.buffer,
    out.tail.buffer,
    ...(out.target ? [out.target.buffer] : []),
  ]);
}
