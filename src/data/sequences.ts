// Whole sequences of a token dataset as model input: B sequences of T tokens → tokens [B×T] (int32) and
// next-token labels [B×T] (−100 at each sequence's last position, and where the dataset's loss mask is 0),
// every id checked against the vocabulary.
import { at } from '../core/arrays.js';
import { DistillError } from '../core/errors.js';
import { IGNORE_INDEX } from '../core/types.js';

/** What training and evaluation need of a token dataset (`openTokenDataset`'s result satisfies it). */
export interface TokenDatasetLike {
  sha256: string;
  seqLen: number;
  numSequences: number;
  vocabSize: number;
  tokenizer: { name: string; sha256: string };
  sequence(i: number): ArrayLike<number>;
  /** Sequence i's loss mask (1 = the position's prediction is scored); absent or undefined: every position. */
  sequenceMask?(i: number): ArrayLike<number> | undefined;
}

/**
 * Tokens and labels of B sequences, each checked against the vocabulary. A position whose loss mask is 0
 * gets label −100, which every loss and metric skips (hard and soft alike), so masked positions neither
 * train nor count in evaluation.
 */
export function assembleTokens(dataset: TokenDatasetLike, seqs: number[]): { tokens: Int32Array; labels: Int32Array } {
  const T = dataset.seqLen;
  const tokens = new Int32Array(seqs.length * T);
  const labels = new Int32Array(seqs.length * T);
  seqs.forEach((s, b) => {
    const row = dataset.sequence(s);
    const mask = dataset.sequenceMask?.(s);
    if (row.length !== T)
      throw new DistillError('E_DATA', `sequence ${s} has the wrong length`, {
        expected: String(T),
        found: String(row.length),
      });
    for (let t = 0; t < T; t++) {
      const id = at(row, t);
      if (!(id >= 0 && id < dataset.vocabSize)) {
        throw new DistillError('E_DATA', `sequence ${s} holds a token id outside the vocabulary`, {
          expected: `0 ≤ id < ${dataset.vocabSize}`,
          found: `${id} at position ${t}`,
        });
      }
      tokens[b * T + t] = id;
      labels[b * T + t] = t + 1 < T && (!mask || mask[t] === 1) ? at(row, t + 1) : IGNORE_INDEX;
    }
  });
  return { tokens, labels };
}
