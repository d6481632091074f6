// Packing: the token stream doc₁ EOT doc₂ EOT … (and, for chat, its per-token target flags) cut every T
// tokens into sequences, with the per-position loss mask and the interleaved validation split.

/** A growing token stream with optional per-token target flags (1 = the token is a training target). */
export class TokenStream {
  private ids = new Uint32Array(1 << 16);
  private flags: Uint8Array | undefined;
  length = 0;

  constructor(withTargets: boolean) {
    if (withTargets) this.flags = new Uint8Array(this.ids.length);
  }

  /** Appends tokens; `targets` (same length) marks the target tokens, none are when omitted. */
  push(ids: ArrayLike<number>, targets?: ArrayLike<number>): void {
    const need = this.length + ids.length;
    if (need > this.ids.length) {
      let cap = this.ids.length;
      while (cap < need) cap *= 2;
      const grown = new Uint32Array(cap);
      grown.set(this.ids.subarray(0, this.length));
      this.ids = grown;
      if (this.flags) {
        const f = new Uint8Array(cap);
        f.set(this.flags.subarray(0, this.length));
        this.flags = f;
      }
    }
    this.ids.set(ids, this.length);
    if (this.flags && targets) this.flags.set(targets, this.length);
    this.length = need;
  }

  get tokens(): Uint32Array {
    return this.ids.subarray(0, this.length);
  }

  get targets(): Uint8Array | undefined {
    return this.flags?.subarray(0, this.length);
  }
}

export interface PackedSplit {
  /** n × T tokens. */
  tokens: Uint32Array;
  /** n × T loss mask: 1 where the prediction at the position (of the next token in the stream) is scored. */
  mask?: Uint8Array;
}

export interface Packed {
  numSequences: number;
  train: PackedSplit;
  val?: PackedSplit;
}

/**
 * Cuts the stream into ⌊L/T⌋ sequences of T tokens (sequence s = stream[sT, (s+1)T); the rest is
 * dropped) and splits off every m-th sequence (m = max(2, round(1/f))) for validation. With target
 * flags, the mask of position p of sequence s is the flag of stream token sT + p + 1 — the token the
 * position predicts — so the last position of a sequence is scored when the first token of the next one
 * (or of the dropped rest) is a target, and 0 past the end of the stream.
 */
export function packSequences(stream: TokenStream, T: number, valFraction: number): Packed {
  const L = stream.length;
  const n = Math.floor(L / T);
  const every = valFraction > 0 ? Math.max(2, Math.round(1 / valFraction)) : 0;
  const isVal = (s: number): boolean => every > 0 && s % every === every - 1;
  const nVal = every > 0 ? Math.floor(n / every) : 0;
  const tokens = stream.tokens;
  const targets = stream.targets;
  const make = (rows: number): PackedSplit => ({
    tokens: new Uint32Array(rows * T),
    ...(targets ? { mask: new Uint8Array(rows * T) } : {}),
  });
  const train = make(n - nVal);
  const val = make(nVal);
  let ti = 0;
  let vi = 0;
  for (let s = 0; s < n; s++) {
    const split = isVal(s) ? val : train;
    const row = isVal(s) ? vi++ : ti++;
    split.tokens.set(tokens.subarray(s * T, (s + 1) * T), row * T);
    if (targets && split.mask) {
      const next = targets.subarray(s * T + 1, Math.min(L, (s + 1) * T + 1));
      split.mask.set(next, row * T);
    }
  }
  return { numSequences: n, train, ...(nVal > 0 ? { val } : {}) };
}
