// The check that a logit cache was made from a given token dataset: same dataset and tokenizer hashes,
// sequence length and sequence count. Training and evaluation both refuse a mismatch before reading a row.
import { DistillError } from '../core/errors.js';
import type { Manifest } from '../store/api.js';
import type { TokenDatasetLike } from './sequences.js';

/** Refuses a cache made from other tokens or another tokenizer, naming what differs (before any training). */
export function checkCacheMatchesDataset(
  manifest: Manifest,
  dataset: TokenDatasetLike & { path?: string },
  uri: string,
): void {
  const inp = manifest.inputs;
  const what = dataset.path ?? 'the token dataset';
  const diffs: string[] = [];
  if (inp.dataset.sha256 !== dataset.sha256)
    diffs.push(`dataset sha256 ${inp.dataset.sha256} in the cache vs ${dataset.sha256} for ${what}`);
  if (inp.tokenizer.sha256 !== dataset.tokenizer.sha256)
    diffs.push(
      `tokenizer sha256 ${inp.tokenizer.sha256} (${inp.tokenizer.name}) in the cache vs ${dataset.tokenizer.sha256} (${dataset.tokenizer.name})`,
    );
  if (inp.dataset.seqLen !== dataset.seqLen) diffs.push(`sequence length ${inp.dataset.seqLen} vs ${dataset.seqLen}`);
  if (inp.dataset.sequences !== dataset.numSequences)
    diffs.push(`${inp.dataset.sequences} sequences vs ${dataset.numSequences}`);
  if (diffs.length) {
    throw new DistillError('E_FINGERPRINT_MISMATCH', `the logit cache ${uri} was not made from ${what}`, {
      found: diffs.join('; '),
      subject: uri,
      hint: 'pass the `data` the teacher ran on, or rebuild the cache with `distill teacher run` on this dataset',
    });
  }
}
