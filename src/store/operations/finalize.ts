// `distill cache finalize`: the manifest of a cache whose every shard is committed, from its run descriptor alone.
import type { Manifest, S3Options } from '../api.js';
import type { BlobStore } from '../backends/blob-store.js';
import { openStore } from '../backends/open.js';
import { validateInputs } from '../commit/fingerprint.js';
import { writeManifest } from '../commit/manifest.js';
import { readRun } from '../commit/run.js';

/** Writes the manifest of a cache whose every shard is committed (E_CACHE_INCOMPLETE names the others). */
export async function finalizeCache(uri: string, opts: { s3?: S3Options; store?: BlobStore } = {}): Promise<Manifest> {
  const store = opts.store ?? (await openStore(uri, opts.s3));
  const run = await readRun(store);
  return writeManifest(store, run.inputs, validateInputs(run.inputs), run.fingerprint, run.numShards);
}
