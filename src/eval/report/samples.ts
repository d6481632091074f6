// Sample completions for the report: the first tokens of a few held-out sequences, completed greedily by the
// teacher and by each student, so a reader sees what each one writes. Students decode on the native engine
// (generate with the KV cache); the ONNX teacher decodes by a full forward of the whole prefix per new token
// (top-1 of its last position; O(L) forwards, fine for short completions).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { at } from '../../core/arrays.js';
import { DistillError } from '../../core/errors.js';
import { loadTokenizer, openTokenDataset, type Tokenizer } from '../../data/index.js';
import { openBackend } from '../../teacher/backends/index.js';
import { generateFromCheckpoint } from '../generate.js';

export interface SampleOptions {
  /** Token dataset whose first `rows` sequences give the prompts (a held-out split). */
  data: string;
  /** The teacher's ONNX file (optional: without it the table has no teacher column). */
  teacher?: string;
  rows?: number;
  /** Prompt tokens (default: half the sequence length) and new tokens (default 32, within the context). */
  promptTokens?: number;
  newTokens?: number;
}

export interface SampleCompletions {
  promptTokens: number;
  newTokens: number;
  /** How the teacher column was decoded, for the page. */
  teacherMethod?: string;
  /** Column names: the students in report order. */
  students: string[];
  rows: Array<{ prompt: string; teacher?: string; students: string[] }>;
}

/** The dataset's tokenizer for decoding: the teacher folder's tokenizer.json, or the built-in byte tokenizer. */
async function datasetTokenizer(
  dataset: { tokenizer: { name: string; sha256: string } },
  teacher?: string,
): Promise<Tokenizer> {
  const folder = teacher ? path.dirname(teacher) : undefined;
  const tok =
    folder && existsSync(path.join(folder, 'tokenizer.json'))
      ? await loadTokenizer(folder)
      : dataset.tokenizer.name === 'byte'
        ? await loadTokenizer('byte')
        : undefined;
  if (!tok || tok.sha256 !== dataset.tokenizer.sha256)
    throw new DistillError('E_TOKENIZER', 'no tokenizer to show the sample completions with', {
      expected: `the dataset's tokenizer ${dataset.tokenizer.name}`,
      found: tok ? `${tok.name} beside the teacher` : 'none beside the teacher',
      hint: 'put the tokenizer.json beside the teacher model',
    });
  return tok;
}

/** Greedy completion of prompts [n × P] by an ONNX teacher: one full forward of the prefix per new token. */
async function teacherGreedy(model: string, prompts: number[][], L: number): Promise<number[][]> {
  const n = prompts.length;
  const P = prompts[0]?.length ?? 0;
  const backend = await openBackend('onnx', { model }, { k: 1, temperature: 1, samples: 0, device: { kind: 'cpu' } });
  try {
    await backend.start({ B: n, T: P + L });
    const seqs = prompts.map((p) => [...p]);
    for (let t = P; t < P + L; t++) {
      const tokens = Uint32Array.from(seqs.flat());
      let b = 0;
      for (const part of await backend.score({ tokens, nSeq: n, seqLen: t, firstSeq: 0, batchSize: n })) {
        for (let i = 0; i < part.nSeq; i++, b++) seqs[b]?.push(at(part.ids, i * t + t - 1));
      }
    }
    return seqs.map((s) => s.slice(P));
  } finally {
    await backend.close();
  }
}

/** Completions of the same prompts by the teacher (when given) and every run with a checkpoint. */
export async function sampleCompletions(
  runs: Array<{ name: string; dir: string }>,
  opts: SampleOptions,
): Promise<SampleCompletions> {
  const dataset = await openTokenDataset(opts.data);
  const rows = Math.min(opts.rows ?? 3, dataset.numSequences);
  const P = opts.promptTokens ?? Math.max(1, Math.floor(dataset.seqLen / 2));
  const L = opts.newTokens ?? 32;
  const tok = await datasetTokenizer(dataset, opts.teacher);
  const prompts = Array.from({ length: rows }, (_, i) => Array.from(dataset.sequence(i).subarray(0, P)));
  const withCk = runs.filter((r) => existsSync(path.join(r.dir, 'model.safetensors')));
  const columns: string[][] = [];
  for (const r of withCk) {
    const res = await generateFromCheckpoint({
      checkpoint: r.dir,
      data: opts.data,
      rows,
      promptTokens: P,
      maxNewTokens: L,
      sampling: { temperature: 0 },
      stopAtEot: false,
    });
    columns.push(res.samples.map((s) => s.completion));
  }
  const teacher = opts.teacher ? await teacherGreedy(opts.teacher, prompts, L) : undefined;
  return {
    promptTokens: P,
    newTokens: L,
    ...(opts.teacher
      ? { teacherMethod: `${path.basename(opts.teacher)}, greedy, one ONNX forward of the prefix per token` }
      : {}),
    students: withCk.map((r) => r.name),
    rows: prompts.map((p, i) => ({
      prompt: tok.decode(p),
      ...(teacher ? { teacher: tok.decode(teacher[i] ?? []) } : {}),
      students: columns.map((c) => c[i] ?? ''),
    })),
  };
}
