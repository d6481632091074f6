// Whole sequences of a token dataset as model input: B sequences of T tokens → tokens [B×T] (int32) and
// next-token labels [B×T] (−100 at each sequence's last position), every id checked against the vocabulary.
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
}

/** Tokens and labels of B sequences, each checked against the vocabulary. */
export function assembleTokens(dataset: TokenDatasetLike, seqs: number[]): { tokens: Int32Array; labels: Int32Array } {
  const T = dataset.seqLen;
  const tokens = new Int32Array(seqs.length * T);
  const labels = new Int32Array(seqs.length * T);
  seqs.forEach((s, b) => {
    const row = dataset.sequence(s);
    if (row.length !== T)
      throw new DistillError('E_DATA', `sequence ${s} has the wrong length`, {
        expected: String(T),
        found: String(row.length),
      });
    for (let t = 0; t < T; t++) {
      const id = row[t]!;
      if (!(id >= 0 && id < dataset.vocabSize)) {
        throw new DistillError('E_DATA', `sequence ${s} holds a token id outside the vocabulary`, {
          expected: `0 ≤ id < ${dataset.vocabSize}`,
          found: `${id} at position ${t}`,
        });
      }
      tokens[b * T + t] = id;
      labels[b * T + t] = t + 1 < T ? row[t + 1]! : IGNORE_INDEX;
    }
  });
  return { tokens, labels };
}
