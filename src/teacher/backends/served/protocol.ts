// What the vLLM and SGLang wire formats share: the shape of a scoring call, the rows it fills (ids and
// log-probs [n·T·k] by descending probability, tail log(1 − Σ exp logp) [n·T], and when asked the log-prob of
// each position's next token [n·T]) and the checks every row passes (k entries, ids < V, no id twice, finite
// log-probabilities ≤ 0, the next token's entry present and for the right id).

/** Thrown by a reply reader: a reply that came back whole but is wrong. Never retried. */
export class ReplyError extends Error {
  constructor(what: string) {
    super(what);
    this.name = 'ReplyError';
  }
}

/** The arrays a group's replies are written into, row = sequence · T + position. */
export interface ScoreTarget {
  ids: Int32Array;
  logp: Float32Array;
  tail: Float32Array;
  /** [n·T] when ScoreContext.tokens is given: log p(token t + 1 | ≤ t) at row t, NaN at each last position. */
  target?: Float32Array;
}

export interface ScoreContext {
  model: string;
  nSeq: number;
  T: number;
  k: number;
  V: number;
  /** Dataset index of the request's first sequence (for messages). */
  firstSeq: number;
  /** The request's token ids [nSeq·T], given when the next-token log-probs (ScoreTarget.target) are wanted. */
  tokens?: Uint32Array;
}

/** One server protocol: its scoring request, how its reply fills rows, and its tokenizer endpoints. */
export interface WireProtocol {
  kind: 'vllm' | 'sglang';
  scorePath: string;
  /** The request body scoring sequences tokens[s·T, (s+1)·T) for s < nSeq. */
  scoreBody(model: string, tokens: Uint32Array, nSeq: number, T: number, k: number): string;
  /** Fills rows [row0, row0 + nSeq·T) from the reply; throws ReplyError saying what is wrong. */
  readScore(reply: unknown, ctx: ScoreContext, out: ScoreTarget, row0: number): void;
  /**
   * A fast reader of the reply's bytes that fills the same rows as readScore would from the parsed reply, or
   * throws (anything) to have the reply read by JSON.parse and readScore instead; the next-token log-probs too
   * when ScoreContext.tokens are given.
   */
  scanScore?(bytes: Uint8Array, ctx: ScoreContext, out: ScoreTarget, row0: number): void;
  tokenize: { path: string; body(model: string, text: string): string; read(reply: unknown): number[] };
  detokenize: { path: string; body(model: string, ids: number[]): string; read(reply: unknown): string };
  /** The server flag that raises the top-k limit, when a 400 says the request exceeded it. */
  limitFlag(message: string, k: number): string | undefined;
}

/**
 * Candidates of one position: ids with log-probability and (vLLM) rank, in typed arrays reused across rows,
 * so reading a reply allocates nothing per position.
 */
export class Candidates {
  n = 0;
  ids = new Float64Array(64);
  lps = new Float64Array(64);
  ranks = new Float64Array(64);
  /** Indices by (rank, −logprob, id), filled by writeRow. */
  order = new Int32Array(64);
  /** seen[id] === stamp when id was written in the current row (a Set per row costs garbage collections). */
  private seen = new Uint32Array(0);
  private stamp = 0;

  clear(): void {
    this.n = 0;
  }

  push(id: number, lp: number, rank: number): void {
    if (this.n === this.ids.length) {
      const grow = (a: Float64Array) => Float64Array.from({ length: a.length * 2 }, (_, i) => a[i] ?? 0);
      this.ids = grow(this.ids);
      this.lps = grow(this.lps);
      this.ranks = grow(this.ranks);
      this.order = new Int32Array(this.ids.length);
    }
    this.ids[this.n] = id;
    this.lps[this.n] = lp;
    this.ranks[this.n] = rank;
    this.n++;
  }

  /** A fresh mark for the next row; true when `id` (< V) was not marked in this row yet. */
  nextRow(V: number): void {
    if (this.seen.length < V) this.seen = new Uint32Array(V);
    if (++this.stamp === 0xffffffff) {
      this.seen.fill(0);
      this.stamp = 1;
    }
  }
  mark(id: number): boolean {
    if (this.seen[id] === this.stamp) return false;
    this.seen[id] = this.stamp;
    return true;
  }
}

export const where = (ctx: ScoreContext, s: number, t: number) => `sequence ${ctx.firstSeq + s}, position ${t}`;

/** Sorts c.order[0, n) by rank, then log-probability (descending), then id: insertion sort, as replies come nearly sorted. */
function orderCandidates(c: Candidates): void {
  const { ids, lps, ranks, order, n } = c;
  const before = (a: number, b: number) => {
    const ra = ranks[a] ?? 0;
    const rb = ranks[b] ?? 0;
    if (ra !== rb) return ra < rb;
    const la = lps[a] ?? 0;
    const lb = lps[b] ?? 0;
    if (la !== lb) return la > lb;
    return (ids[a] ?? 0) < (ids[b] ?? 0);
  };
  for (let i = 0; i < n; i++) {
    let j = i;
    while (j > 0 && before(i, order[j - 1] ?? 0)) {
      order[j] = order[j - 1] ?? 0;
      j--;
    }
    order[j] = i;
  }
}

/**
 * Writes the k best candidates (by rank, then log-probability, then id) into row `row`, after checking
 * each: an integer id below V, not seen twice, a finite log-probability ≤ 0 (1e-3 of rounding allowed).
 */
export function writeRow(c: Candidates, ctx: ScoreContext, out: ScoreTarget, row: number, at: string): void {
  const { k, V } = ctx;
  if (c.n < k) throw new ReplyError(`${at}: ${c.n} log-probabilities, expected ${k}`);
  orderCandidates(c);
  c.nextRow(V);
  let mass = 0;
  for (let j = 0; j < k; j++) {
    const i = c.order[j] ?? 0;
    const v = c.ids[i] ?? Number.NaN;
    const p = c.lps[i] ?? Number.NaN;
    if (!Number.isInteger(v) || v < 0 || v >= V) throw new ReplyError(`${at}: token id ${v} is not below V = ${V}`);
    if (!c.mark(v)) throw new ReplyError(`${at}: token id ${v} appears twice`);
    if (!Number.isFinite(p) || p > 1e-3) throw new ReplyError(`${at}: log-probability ${p} of id ${v}`);
    out.ids[row * k + j] = v;
    out.logp[row * k + j] = p;
    mass += Math.exp(p);
  }
  // As the ONNX graph does: rounding can push the mass past 1; the tail is then −inf, never NaN.
  out.tail[row] = Math.log(Math.max(1 - mass, 0));
}

/** nSeq sequences of T token ids as a JSON list of lists, without a string per number. */
export function jsonPrompts(tokens: Uint32Array, nSeq: number, T: number): string {
  const prompts: string[] = [];
  for (let s = 0; s < nSeq; s++) prompts.push(`[${tokens.subarray(s * T, (s + 1) * T).join(',')}]`);
  return `[${prompts.join(',')}]`;
}

export const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * POST /tokenize and /detokenize as vLLM and SGLang both serve them: {model, prompt, add_special_tokens} →
 * {tokens, count, max_model_len}; {model, tokens, …extra} → {<textField>: string}.
 */
export function tokenizerEndpoints(
  textField: string,
  detokenizeExtra: Record<string, unknown> = {},
): Pick<WireProtocol, 'tokenize' | 'detokenize'> {
  return {
    tokenize: {
      path: '/tokenize',
      body: (model, prompt) => JSON.stringify({ model, prompt, add_special_tokens: false }),
      read: (r) => {
        if (!isObject(r) || !Array.isArray(r.tokens)) throw new ReplyError('the reply has no "tokens" list');
        return r.tokens.map(Number);
      },
    },
    detokenize: {
      path: '/detokenize',
      body: (model, tokens) => JSON.stringify({ model, tokens, ...detokenizeExtra }),
      read: (r) => {
        const v = isObject(r) ? r[textField] : undefined;
        if (typeof v !== 'string') throw new ReplyError(`the reply has no "${textField}" string`);
        return v;
      },
    },
  };
}

/** The log-prob a reply gives prompt token t (≥ 1, id `id`) of one sequence; throws ReplyError naming `at`. */
export type TokenLogprobReader = (t: number, id: number, at: string) => number;

/**
 * Fills the next-token log-probs of sequence s when they are wanted (ctx.tokens): row t − 1 takes the log-prob
 * the reply gives prompt token t, checked finite and ≤ 0 (1e-3 of rounding allowed); the last row has none (NaN).
 */
export function readSequenceTargets(
  ctx: ScoreContext,
  out: ScoreTarget,
  row0: number,
  s: number,
  read: TokenLogprobReader,
): void {
  const { T, tokens } = ctx;
  const target = out.target;
  if (!tokens || !target) return;
  for (let t = 1; t < T; t++) {
    const at = where(ctx, s, t - 1);
    const id = tokens[s * T + t] ?? -1;
    const lp = read(t, id, at);
    if (!Number.isFinite(lp) || lp > 1e-3) throw new ReplyError(`${at}: log-probability ${lp} of the next token ${id}`);
    target[row0 + s * T + t - 1] = lp;
  }
  target[row0 + s * T + T - 1] = Number.NaN;
}

/** Turns one reply entry into candidates (after c.clear()); throws ReplyError naming `at` when it is malformed. */
export type EntryReader = (entry: unknown, c: Candidates, at: string) => void;

/**
 * Fills one sequence's T rows, the layout both servers share: `prompt.entries` holds T entries, entry 0 null
 * (nothing predicts the first token) and entry t the top k predicting token t, so row t − 1; `last` is the
 * distribution after the whole prompt, row T − 1 (the one generated token's top logprobs).
 */
export function readSequenceRows(
  ctx: ScoreContext,
  out: ScoreTarget,
  row0: number,
  s: number,
  c: Candidates,
  prompt: { name: string; entries: unknown; read: EntryReader },
  last: { name: string; entry: unknown; read: EntryReader },
): void {
  const { T } = ctx;
  const { entries } = prompt;
  if (!Array.isArray(entries) || entries.length !== T)
    throw new ReplyError(
      `${where(ctx, s, 0)}: ${prompt.name} holds ${Array.isArray(entries) ? entries.length : 'no'} positions, expected T = ${T}`,
    );
  if (entries[0] !== null) throw new ReplyError(`${where(ctx, s, 0)}: ${prompt.name}[0] is not null`);
  for (let t = 1; t < T; t++) {
    const at = where(ctx, s, t - 1);
    c.clear();
    prompt.read(entries[t], c, at);
    writeRow(c, ctx, out, row0 + s * T + t - 1, at);
  }
  const at = where(ctx, s, T - 1);
  if (last.entry === undefined) throw new ReplyError(`${at}: ${last.name} is missing`);
  c.clear();
  last.read(last.entry, c, at);
  writeRow(c, ctx, out, row0 + s * T + T - 1, at);
}
