// The ONNX backend: a teacher file under the teacher contract (input_ids int64 [B,T] → logits float [B,T,V]),
// surgered so only top-k, tail and V leave ONNX Runtime, run by one session on its own thread per worker.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DistillError } from '../../../core/errors.js';
import { loadTokenizer, type TokenDataset } from '../../../data/index.js';
import { sha256Hex } from '../../../store/index.js';
import { defineBackend, type BackendDescription, type BackendOptions, type TeacherBackend } from '../define.js';
import { createSession, runTopK } from './session.js';
import { appendTopK, type SurgeryOutputs } from './surgery.js';
import { InferenceThread } from './thread.js';

function readModel(file: string): Uint8Array {
  if (!existsSync(file) || !statSync(file).isFile())
    throw new DistillError('E_NOT_FOUND', `teacher model not found: ${file}`, {
      expected: 'an ONNX file',
      subject: file,
    });
  return new Uint8Array(readFileSync(file));
}

/** V when the logits shape leaves it symbolic: the model is asked once, on one position of token 0. */
async function probeVocab(surgered: Uint8Array, subject: string, outputs: SurgeryOutputs): Promise<number> {
  const sess = await createSession(surgered, subject, { device: { kind: 'cpu' }, threads: 1 });
  try {
    return (await runTopK(sess, outputs, BigInt64Array.of(0n), 1, 1)).vocab;
  } finally {
    await sess.release();
  }
}

class OnnxBackend implements TeacherBackend {
  private thread: InferenceThread | undefined;

  constructor(
    private readonly model: string,
    private readonly surgered: Uint8Array,
    private readonly outputs: SurgeryOutputs,
    private readonly description: BackendDescription,
    private readonly options: BackendOptions,
  ) {}

  describe(): BackendDescription {
    return this.description;
  }

  /** A tokenizer.json beside the model must be the one the dataset was prepared with. */
  async checkDataset(dataset: TokenDataset): Promise<void> {
    await this.checkTokenizer(dataset.tokenizer, dataset.path);
  }

  /** A tokenizer.json beside the model must be this one (live scoring: the sequences' tokenizer). */
  async checkTokenizer(tokenizer: { name: string; sha256: string }, subject?: string): Promise<void> {
    const tokFile = path.join(path.dirname(this.model), 'tokenizer.json');
    if (!existsSync(tokFile)) return;
    const own = await loadTokenizer(tokFile);
    if (own.sha256 !== tokenizer.sha256) {
      throw new DistillError('E_TOKENIZER', `the dataset was tokenized with a different tokenizer than the teacher's`, {
        expected: `${own.name} (sha256 ${own.sha256.slice(0, 12)}…, ${tokFile})`,
        found: `${tokenizer.name} (sha256 ${tokenizer.sha256.slice(0, 12)}…)`,
        hint: `prepare the dataset with the tokenizer ${path.dirname(this.model)}`,
        ...(subject ? { subject } : {}),
      });
    }
  }

  async start(shape: { B: number; T: number }): Promise<void> {
    const { device, threads } = this.options;
    this.thread = await InferenceThread.start(this.surgered, this.model, this.outputs, { device, threads }, shape);
  }

  score(req: { tokens: Uint32Array; nSeq: number; seqLen: number; batchSize: number }) {
    if (!this.thread) return Promise.reject(new Error('the ONNX backend was not started'));
    return this.thread.runTokens(req.tokens, req.nSeq, req.seqLen, req.batchSize);
  }

  async close(): Promise<void> {
    await this.thread?.close();
    this.thread = undefined;
  }
}

export const onnxParams = z.object({ model: z.string().min(1).optional() }).strict();
export type OnnxParams = z.infer<typeof onnxParams>;

export default defineBackend<OnnxParams>({
  id: 'onnx',
  description: 'an ONNX file (input_ids → logits) run by ONNX Runtime on the local CPU or CUDA devices',
  params: onnxParams,
  usesDevices: true,
  async open({ model }, o) {
    if (!model)
      throw new DistillError('E_USAGE', 'the onnx backend needs `model`', {
        field: 'model',
        expected: 'an ONNX file (input_ids int64 [B,T] → logits float [B,T,V])',
        found: 'none',
      });
    const p = { model };
    const bytes = readModel(p.model);
    const {
      bytes: surgered,
      outputs,
      contract,
    } = appendTopK(bytes, p.model, {
      k: o.k,
      temperature: o.temperature,
      samples: o.samples,
      seed: o.seed,
      optimum: true,
      ...(o.targets ? { targets: true } : {}),
    });
    const V = contract.vocabSize ?? (await probeVocab(surgered, p.model, outputs));
    if (o.k > V)
      throw new DistillError('E_USAGE', "`topK` exceeds the teacher's vocabulary", {
        field: 'topK',
        expected: `k ≤ V = ${V}`,
        found: `k = ${o.k}`,
        subject: p.model,
      });
    const description: BackendDescription = {
      kind: 'onnx',
      label: path.basename(p.model),
      vocabSize: V,
      maxSeqLen: typeof contract.input.dims[1] === 'number' ? contract.input.dims[1] : null,
      identity: { name: path.basename(p.model), sha256: sha256Hex(bytes) },
      temperature: o.temperature,
      samples: o.samples,
      inFlight: 1,
    };
    return new OnnxBackend(p.model, surgered, outputs, description, o);
  },
});
