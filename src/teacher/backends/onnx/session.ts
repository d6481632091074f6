// ONNX Runtime sessions for the surgered teacher: device parsing (cpu, cuda:N), a clear error when the
// CUDA provider is not installed, and one batch [B,T] of token ids → top-k ids/logp [B·T·k], tail [B·T].
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { DistillError } from '../../../core/errors.js';
import { extraFeeds } from './optimum.js';
import type { SurgeryOutputs } from './surgery.js';

export type Device = { kind: 'cpu' } | { kind: 'cuda'; id: number };

/** "cpu" | "cuda:0,1" | "cuda:0,cuda:1" → one Device per worker. */
export function parseDevices(spec: string): Device[] {
  const s = spec.trim();
  if (s === 'cpu') return [{ kind: 'cpu' }];
  const m = /^cuda:(.+)$/.exec(s);
  const ids = m?.[1] ? m[1].split(',').map((x) => x.trim().replace(/^cuda:/, '')) : [];
  if (!m || !ids.length || ids.some((x) => !/^\d+$/.test(x))) {
    throw new DistillError('E_USAGE', `invalid \`device\` "${spec}"`, {
      field: 'device',
      expected: 'cpu, cuda:0 or a list such as cuda:0,1,2,3',
      found: spec,
    });
  }
  return ids.map((x) => ({ kind: 'cuda', id: Number(x) }));
}

export const deviceName = (d: Device): string => (d.kind === 'cpu' ? 'cpu' : `cuda:${d.id}`);

function ortBinDir(): string {
  const req = createRequire(import.meta.url);
  const root = path.dirname(path.dirname(req.resolve('onnxruntime-node')));
  return path.join(root, 'bin', 'napi-v6', process.platform, process.arch);
}

/** Throws E_DEVICE with install instructions when ONNX Runtime's CUDA provider library is absent. */
export function checkDevice(d: Device): void {
  if (d.kind === 'cpu') return;
  const dir = ortBinDir();
  const lib = path.join(
    dir,
    process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so',
  );
  if (!existsSync(lib)) {
    throw new DistillError(
      'E_DEVICE',
      `device ${deviceName(d)} needs ONNX Runtime's CUDA execution provider, which is not installed`,
      {
        expected: lib,
        found: 'missing',
        hint: 'install it with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` (needs CUDA 12 and cuDNN 9), or run with `device` cpu',
        subject: deviceName(d),
      },
    );
  }
}

export interface TopKBatch {
  /** n × k, n = B·T, sorted by probability. */
  ids: Int32Array;
  logp: Float32Array;
  tail: Float32Array;
  /** n × S Multinomial draws when requested. */
  samples?: Int32Array;
  /** n: log-prob of each position's next token, NaN at each sequence's last position (surgery `targets`). */
  target?: Float32Array;
}

export interface SessionOptions {
  device: Device;
  /** ONNX Runtime intra-op threads (0 = its default). */
  threads?: number;
}

export async function createSession(
  modelBytes: Uint8Array,
  subject: string,
  opts: SessionOptions,
): Promise<ort.InferenceSession> {
  checkDevice(opts.device);
  const so: ort.InferenceSession.SessionOptions = {
    executionProviders:
      opts.device.kind === 'cpu'
        ? ['cpu']
        : [{ name: 'cuda', deviceId: opts.device.id } as ort.InferenceSession.ExecutionProviderConfig],
    graphOptimizationLevel: 'all',
  };
  if (opts.threads) so.intraOpNumThreads = opts.threads;
  try {
    return await ort.InferenceSession.create(modelBytes, so);
  } catch (e) {
    const msg = (e as Error).message;
    if (opts.device.kind === 'cuda')
      throw new DistillError('E_DEVICE', `cannot start ONNX Runtime on ${deviceName(opts.device)}`, {
        found: msg,
        hint: 'check the device index, the CUDA 12/cuDNN 9 libraries and nvidia-smi',
        subject: deviceName(opts.device),
        cause: e,
      });
    throw new DistillError('E_MODEL', `ONNX Runtime cannot load teacher ${subject}`, { found: msg, subject, cause: e });
  }
}

export function int64Ids(tokens: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) out[i] = BigInt(tokens[i] ?? 0);
  return out;
}

/** Runs one batch through the surgered session; only the O(k) outputs are fetched. */
export async function runTopK(
  session: ort.InferenceSession,
  outs: SurgeryOutputs,
  ids: BigInt64Array,
  B: number,
  T: number,
): Promise<TopKBatch & { vocab: number }> {
  // With one position there is no next token: the target output (empty) is not asked for.
  const target = outs.target && T > 1 ? outs.target : undefined;
  const fetches = [
    outs.ids,
    outs.logp,
    outs.tail,
    outs.vocab,
    ...(outs.samples ? [outs.samples] : []),
    ...(target ? [target] : []),
  ];
  const feeds = { ...extraFeeds(outs.feeds, B, T), input_ids: new ort.Tensor('int64', ids, [B, T]) };
  const r = await session.run(feeds, fetches);
  const data = (name: string) => {
    const t = r[name];
    if (!t) throw new Error(`ONNX Runtime returned no "${name}" (fetched ${fetches.join(', ')})`);
    return t.data;
  };
  const res: TopKBatch & { vocab: number } = {
    ids: data(outs.ids) as Int32Array,
    logp: data(outs.logp) as Float32Array,
    tail: data(outs.tail) as Float32Array,
    vocab: Number((data(outs.vocab) as BigInt64Array)[0]),
  };
  if (outs.samples) res.samples = data(outs.samples) as Int32Array;
  if (outs.target) res.target = spreadTargets(target ? (data(target) as Float32Array) : undefined, B, T);
  return res;
}

/** [B, T−1] → [B·T] with NaN at each sequence's last position (the ScoredPart.target layout). */
function spreadTargets(inner: Float32Array | undefined, B: number, T: number): Float32Array {
  const out = new Float32Array(B * T).fill(Number.NaN);
  if (!inner) return out;
  if (inner.length !== B * (T - 1))
    throw new Error(`ONNX Runtime returned ${inner.length} next-token log-probabilities, expected ${B * (T - 1)}`);
  for (let b = 0; b < B; b++) out.set(inner.subarray(b * (T - 1), (b + 1) * (T - 1)), b * T);
  return out;
}
