// The run descriptor `cache.json`: the inputs and shard count, put-if-absent by the first writer, so that any
// process can finalize the run and a writer with other inputs is refused with the differing input named.
import { DistillError } from '../../core/errors.js';
import type { CacheInputs } from '../api.js';
import type { BlobStore } from '../backends/blob-store.js';
import { RUN_KEY } from './keys.js';

export interface RunRecord {
  formatVersion: number;
  fingerprint: string;
  numShards: number;
  inputs: CacheInputs;
}

/** Writes the run descriptor, or checks that the one already there describes the same run. */
export async function claimRun(store: BlobStore, run: RunRecord): Promise<void> {
  const body = new TextEncoder().encode(`${JSON.stringify(run, null, 2)}\n`);
  if (await store.putIfAbsent(RUN_KEY, body)) return;
  const theirs = await readRun(store);
  if (theirs.fingerprint !== run.fingerprint || theirs.numShards !== run.numShards) {
    throw new DistillError('E_FINGERPRINT_MISMATCH', `${store.describe('')} already holds a different cache`, {
      expected: `fingerprint ${run.fingerprint} with ${run.numShards} shards`,
      found: `fingerprint ${theirs.fingerprint} with ${theirs.numShards} shards (${describeDiff(theirs.inputs, run.inputs)})`,
      subject: store.describe(RUN_KEY),
      hint: 'write to a new prefix, or delete the old cache first',
    });
  }
}

export async function readRun(store: BlobStore): Promise<RunRecord> {
  const bytes = await store.get(RUN_KEY);
  if (!bytes) {
    throw new DistillError('E_NOT_FOUND', `no cache at ${store.describe('')}`, {
      expected: `${store.describe(RUN_KEY)} (written when a teacher run starts)`,
      found: 'nothing',
      subject: store.describe(''),
      hint: 'check the URI, or run `distill teacher run` to create the cache',
    });
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as RunRecord;
  } catch (err) {
    throw new DistillError('E_CACHE_FORMAT', `${store.describe(RUN_KEY)} is not valid JSON`, {
      subject: store.describe(RUN_KEY),
      cause: err,
    });
  }
}

/** Which inputs of two runs differ, for the refusal message. */
function describeDiff(a: CacheInputs, b: CacheInputs): string {
  const diffs: string[] = [];
  if (a.teacher.sha256 !== b.teacher.sha256) diffs.push('teacher differs');
  if (a.tokenizer.sha256 !== b.tokenizer.sha256) diffs.push('tokenizer differs');
  if (a.dataset.sha256 !== b.dataset.sha256) diffs.push('dataset differs');
  if (
    a.k !== b.k ||
    a.temperature !== b.temperature ||
    a.vocabSize !== b.vocabSize ||
    (a.samples ?? 0) !== (b.samples ?? 0)
  )
    diffs.push('k/temperature/vocab/samples differ');
  if (JSON.stringify(a.encodings) !== JSON.stringify(b.encodings)) diffs.push('encodings differ');
  return diffs.join(', ') || 'shard count differs';
}
