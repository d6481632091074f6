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
      found: `fingerprint ${theirs.fingerprint} with ${theirs.numShards} shards`,
      hint: `the inputs that differ: ${
        [
          describeDiff(theirs.inputs, run.inputs),
          theirs.numShards !== run.numShards
            ? `shard count ${theirs.numShards} in the cache, ${run.numShards} now`
            : '',
        ]
          .filter(Boolean)
          .join('; ') || 'none (another format version)'
      }. Write to a new prefix, or delete the old cache first`,
      subject: store.describe(RUN_KEY),
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

/** A value of the run inputs in a message: hashes shortened. */
function fmtInput(v: unknown): string {
  if (v === undefined || v === null) return 'none';
  return typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? `${v.slice(0, 12)}…` : String(v);
}

/** The inputs as leaf paths (`dataset.sequences`, `encodings.logp`); samples 0 and absent are the same input. */
function leaves(v: unknown, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) leaves(x, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, v);
  return out;
}

/** Exactly the inputs of two runs that differ, each with both values: `k 16 in the cache, 4 now`. */
export function describeDiff(theirs: CacheInputs, ours: CacheInputs): string {
  const a = leaves({ ...theirs, samples: theirs.samples ?? 0 });
  const b = leaves({ ...ours, samples: ours.samples ?? 0 });
  const diffs: string[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(key);
    const y = b.get(key);
    if (JSON.stringify(x) !== JSON.stringify(y)) diffs.push(`${key} ${fmtInput(x)} in the cache, ${fmtInput(y)} now`);
  }
  return diffs.join('; ');
}
