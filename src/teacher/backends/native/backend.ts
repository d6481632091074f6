// The native backend: a Distillery checkpoint or a Hugging Face Llama checkpoint folder run as the teacher by the
// native engine (no ONNX export): forward, the LM head, then per position log-softmax(logits / T) over the full
// vocabulary and its top k — what the ONNX backend's appended graph computes (surgery.ts), so both write the same
// cache. score() takes any sequences in memory, so live scoring (on-policy training) can call it too.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DistillError } from '../../../core/errors.js';
import type { ModelConfig } from '../../../core/model.js';
import { loadTokenizer, type TokenDataset } from '../../../data/index.js';
import { createEngine, lmHeadLogits, type ModelEngine } from '../../../engine/index.js';
import { loadNative } from '../../../native/loader.js';
import {
  defineBackend,
  type BackendDescription,
  type BackendOptions,
  type ScoredPart,
  type TeacherBackend,
} from '../define.js';
import { loadNativeTeacher, type NativeTeacherModel } from './model.js';
import { topKRows } from './topk.js';

/** The dataset's tokenizer (name and hash) against the model folder's tokenizer.json, when it has one. */
export async function checkTeacherTokenizer(
  dir: string,
  tokenizer: { name: string; sha256: string },
  subject?: string,
): Promise<void> {
  const tokFile = path.join(dir, 'tokenizer.json');
  if (!existsSync(tokFile)) return;
  const own = await loadTokenizer(tokFile);
  if (own.sha256 !== tokenizer.sha256) {
    throw new DistillError('E_TOKENIZER', `the tokens were made with a different tokenizer than the teacher's`, {
      expected: `${own.name} (sha256 ${own.sha256.slice(0, 12)}…, ${tokFile})`,
      found: `${tokenizer.name} (sha256 ${tokenizer.sha256.slice(0, 12)}…)`,
      hint: `tokenize with the tokenizer of ${dir}`,
      ...(subject ? { subject } : {}),
    });
  }
}

export class NativeBackend implements TeacherBackend {
  /** Logits held at once while scoring (16M floats, 64 MB); tests lower it to cross chunk edges. */
  static logitChunk = 1 << 24;

  private engine: ModelEngine | undefined;

  constructor(
    private readonly model: NativeTeacherModel,
    private readonly description: BackendDescription,
    private readonly options: BackendOptions,
  ) {}

  get config(): ModelConfig {
    return this.model.config;
  }

  describe(): BackendDescription {
    return this.description;
  }

  async checkDataset(dataset: TokenDataset): Promise<void> {
    await this.checkTokenizer(dataset.tokenizer, dataset.path);
  }

  /**
   * The tokenizer check without a dataset (live scoring): the model folder's tokenizer.json, when it has one, must
   * be this one. The vocabulary is describe().vocabSize.
   */
  async checkTokenizer(tokenizer: { name: string; sha256: string }, subject?: string): Promise<void> {
    await checkTeacherTokenizer(this.model.dir, tokenizer, subject);
  }

  async start(): Promise<void> {
    if (this.options.threads !== undefined) loadNative().addon.setNumThreads(this.options.threads);
    this.engine ??= createEngine(this.model.config);
  }

  /**
   * One part per `batchSize` sequences: forward, LM head, top-k of log-softmax(logits / T), tail mass, and with
   * `targets` the log-prob of each position's next token, read from the same full log-softmax.
   */
  async score(req: { tokens: Uint32Array; nSeq: number; seqLen: number; batchSize: number }): Promise<ScoredPart[]> {
    const engine = this.engine;
    if (!engine) throw new Error('the native backend was not started');
    const { config, params } = this.model;
    const T = req.seqLen,
      V = config.vocabSize;
    if (req.tokens.length !== req.nSeq * T) {
      throw new DistillError('E_USAGE', 'the tokens do not match nSeq × seqLen', {
        expected: `${req.nSeq * T} ids`,
        found: `${req.tokens.length}`,
      });
    }
    if (T > config.contextLength) {
      throw new DistillError('E_DATA', 'the sequences are longer than the teacher takes', {
        expected: `T ≤ ${config.contextLength}`,
        found: `T = ${T}`,
      });
    }
    const parts: ScoredPart[] = [];
    for (let s0 = 0; s0 < req.nSeq; s0 += req.batchSize) {
      const n = Math.min(req.batchSize, req.nSeq - s0);
      const tokens = Int32Array.from(req.tokens.subarray(s0 * T, (s0 + n) * T));
      const hidden = engine.forward(params, tokens, n, T);
      const rows = n * T,
        k = this.options.k,
        d = config.dModel;
      const part: ScoredPart = {
        nSeq: n,
        ids: new Int32Array(rows * k),
        logp: new Float32Array(rows * k),
        tail: new Float32Array(rows),
        vocab: V,
      };
      const next = this.options.targets ? nextTokens(tokens, n, T) : undefined;
      if (next) part.target = new Float32Array(rows);
      // The logits of logitChunk floats at a time, not rows × V at once (V is 128k for current Llamas).
      const chunk = Math.max(1, Math.floor(NativeBackend.logitChunk / V));
      for (let r0 = 0; r0 < rows; r0 += chunk) {
        const m = Math.min(chunk, rows - r0);
        const logits = lmHeadLogits(config, params, hidden.subarray(r0 * d, (r0 + m) * d), m);
        const top = topKRows(logits, m, V, k, this.options.temperature, next?.subarray(r0, r0 + m));
        part.ids.set(top.ids, r0 * k);
        part.logp.set(top.logp, r0 * k);
        part.tail.set(top.tail, r0);
        if (top.target) part.target?.set(top.target, r0);
      }
      parts.push(part);
    }
    return parts;
  }

  async close(): Promise<void> {
    this.engine?.dispose();
    this.engine = undefined;
  }
}

/** Row s·T + t → token t + 1 of sequence s; −1 at each sequence's last position. */
function nextTokens(tokens: Int32Array, n: number, T: number): Int32Array {
  const next = new Int32Array(n * T);
  for (let s = 0; s < n; s++) {
    for (let t = 0; t < T - 1; t++) next[s * T + t] = tokens[s * T + t + 1] ?? -1;
    next[s * T + T - 1] = -1;
  }
  return next;
}

export const nativeParams = z.object({ model: z.string().min(1).optional() }).strict();
export type NativeParams = z.infer<typeof nativeParams>;

export default defineBackend<NativeParams>({
  id: 'native',
  description: 'a Distillery checkpoint or a Hugging Face Llama checkpoint folder, run by the native engine on the CPU',
  params: nativeParams,
  usesDevices: true,
  async open({ model }, o) {
    if (!model)
      throw new DistillError('E_USAGE', 'the native backend needs `model`', {
        field: 'model',
        expected: 'a Distillery checkpoint folder or a Hugging Face Llama checkpoint folder',
        found: 'none',
      });
    if (o.device.kind !== 'cpu')
      throw new DistillError('E_UNSUPPORTED', 'the native backend runs on the CPU only', {
        expected: '`device` cpu',
        found: `cuda:${o.device.id}`,
        field: 'device',
      });
    if (o.samples > 0)
      throw new DistillError('E_UNSUPPORTED', 'the native backend draws no samples', {
        field: 'samples',
        expected: '`samples` 0',
        found: String(o.samples),
        hint: 'export the model to ONNX (`distill student export`) for sampled distillation',
      });
    const m = loadNativeTeacher(model);
    const V = m.config.vocabSize;
    if (o.k > V)
      throw new DistillError('E_USAGE', "`topK` exceeds the teacher's vocabulary", {
        field: 'topK',
        expected: `k ≤ V = ${V}`,
        found: `k = ${o.k}`,
        subject: model,
      });
    const description: BackendDescription = {
      kind: 'native',
      label: path.basename(path.resolve(model)),
      vocabSize: V,
      maxSeqLen: m.config.contextLength,
      identity: { name: `${path.basename(path.resolve(model))} (${m.source})`, sha256: m.sha256 },
      temperature: o.temperature,
      samples: 0,
      inFlight: 1,
    };
    return new NativeBackend(m, description, o);
  },
});
