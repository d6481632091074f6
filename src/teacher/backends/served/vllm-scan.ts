// The fast reader of a vLLM scoring reply: walks the reply's bytes with JsonScanner and fills the same rows
// through the same checks (Candidates, writeRow) as vllm.ts's readScore over JSON.parse, without building an
// object per candidate. Whatever it does not take as it is (another shape, a duplicate field or id, a wrong
// row) makes it give up, and the reply is read again the slow way, which says precisely what is wrong.
import { field, GIVE_UP, JsonScanner } from './json-scan.js';
import { Candidates, writeRow, type ScoreContext, type ScoreTarget } from './protocol.js';

const MODEL = field('model');
const CHOICES = field('choices');
const INDEX = field('index');
const PROMPT_LOGPROBS = field('prompt_logprobs');
const LOGPROBS = field('logprobs');
const TOP_LOGPROBS = field('top_logprobs');
const LOGPROB = field('logprob');
const RANK = field('rank');
const TOKEN_ID = field('token_id:');
/** Rows name no position here: a row that fails its checks sends the reply to the slow reader, which does. */
const AT = '';

/** Per-thread state reused across replies: candidates, and a stamp per id to see an id twice in one entry. */
class State {
  readonly c = new Candidates();
  seen = new Uint32Array(0);
  stamp = 0;

  /** A fresh stamp for the next entry. */
  nextEntry(V: number): void {
    if (this.seen.length < V) this.seen = new Uint32Array(V);
    if (++this.stamp === 0xffffffff) {
      this.seen.fill(0);
      this.stamp = 1;
    }
  }

  /** Adds a candidate; an id outside [0, V) or seen twice in the entry gives up (JSON.parse keeps the last). */
  push(id: number, lp: number, rank: number, V: number): void {
    if (!(id >= 0 && id < V) || this.seen[id] === this.stamp) throw GIVE_UP;
    this.seen[id] = this.stamp;
    this.c.push(id, lp, rank);
  }
}
let state: State | undefined;

/** Fills rows [row0, row0 + nSeq·T) from a vLLM reply's bytes, or throws GIVE_UP (or a ReplyError). */
export function scanVllmScore(bytes: Uint8Array, ctx: ScoreContext, out: ScoreTarget, row0: number): void {
  const st = (state ??= new State());
  const s = new JsonScanner(bytes);
  let model = false;
  let choices = false;
  s.expect(0x7b);
  if (s.firstMember())
    do {
      const k = s.key();
      if (s.keyIs(k, MODEL)) {
        if (model || s.plainString() !== ctx.model) throw GIVE_UP;
        model = true;
      } else if (s.keyIs(k, CHOICES)) {
        if (choices) throw GIVE_UP;
        choices = true;
        s.expect(0x5b);
        let n = 0;
        if (s.firstElement())
          do {
            if (n >= ctx.nSeq) throw GIVE_UP;
            choice(s, st, ctx, out, row0, n++);
          } while (s.nextElement());
        if (n !== ctx.nSeq) throw GIVE_UP;
      } else s.skipValue();
    } while (s.nextMember());
  s.end();
  if (!model || !choices) throw GIVE_UP;
}

/** choices[seq]: prompt_logprobs fill rows 0..T−2 of the sequence, logprobs.top_logprobs[0] row T − 1. */
function choice(s: JsonScanner, st: State, ctx: ScoreContext, out: ScoreTarget, row0: number, seq: number): void {
  const base = row0 + seq * ctx.T;
  let index = false;
  let prompt = false;
  let last = false;
  s.expect(0x7b);
  if (s.firstMember())
    do {
      const k = s.key();
      if (s.keyIs(k, INDEX)) {
        if (index || s.number() !== seq) throw GIVE_UP;
        index = true;
      } else if (s.keyIs(k, PROMPT_LOGPROBS)) {
        if (prompt) throw GIVE_UP;
        prompt = true;
        promptLogprobs(s, st, ctx, out, base, seq);
      } else if (s.keyIs(k, LOGPROBS)) {
        if (last) throw GIVE_UP;
        last = true;
        lastRow(s, st, ctx, out, base + ctx.T - 1);
      } else s.skipValue();
    } while (s.nextMember());
  if (!prompt || !last) throw GIVE_UP;
}

/**
 * [null, {"id": {logprob, rank, decoded_token}, …} × (T − 1)]: entry t is row t − 1, and when they are wanted
 * (out.target) its item for the prompt's token t is row t − 1's next-token log-prob.
 */
function promptLogprobs(
  s: JsonScanner,
  st: State,
  ctx: ScoreContext,
  out: ScoreTarget,
  base: number,
  seq: number,
): void {
  const { T, V } = ctx;
  s.expect(0x5b);
  if (!s.takeNull()) throw GIVE_UP;
  let t = 1;
  while (s.nextElement()) {
    if (t >= T) throw GIVE_UP;
    st.c.clear();
    st.nextEntry(V);
    s.expect(0x7b);
    if (s.firstMember())
      do {
        const id = s.keyDecimal(s.key());
        candidate(s, st, id, V);
      } while (s.nextMember());
    writeRow(st.c, ctx, out, base + t - 1, AT);
    if (out.target) out.target[base + t - 1] = ownLogprob(st.c, ctx.tokens?.[seq * T + t]);
    t++;
  }
  if (t !== T) throw GIVE_UP;
  if (out.target) out.target[base + T - 1] = Number.NaN;
}

/**
 * The next-token log-prob of a row (readSequenceTargets' rule): the entry's item for the prompt's own token, which
 * vLLM always includes; absent, not finite or above 0 (1e-3 of rounding allowed) gives up.
 */
function ownLogprob(c: Candidates, id: number | undefined): number {
  for (let i = 0; i < c.n; i++)
    if (c.ids[i] === id) {
      const lp = c.lps[i] ?? Number.NaN;
      if (!Number.isFinite(lp) || lp > 1e-3) break;
      return lp;
    }
  throw GIVE_UP;
}

/** {logprob, rank, decoded_token, …}: logprob a number, rank a number or absent (then last). */
function candidate(s: JsonScanner, st: State, id: number, V: number): void {
  let lp: number | undefined;
  let rank: number | undefined;
  s.expect(0x7b);
  if (s.firstMember())
    do {
      if (s.tryKey(LOGPROB)) {
        if (lp !== undefined) throw GIVE_UP;
        lp = s.number();
      } else if (s.tryKey(RANK)) {
        if (rank !== undefined) throw GIVE_UP;
        rank = s.number();
      } else {
        s.key();
        s.skipValue();
      }
    } while (s.nextMember());
  if (lp === undefined) throw GIVE_UP;
  st.push(id, lp, rank ?? Number.POSITIVE_INFINITY, V);
}

/** logprobs: {top_logprobs: [{"token_id:<id>": logprob, …}, …], …}: the first map is row T − 1. */
function lastRow(s: JsonScanner, st: State, ctx: ScoreContext, out: ScoreTarget, row: number): void {
  const { V } = ctx;
  let top = false;
  s.expect(0x7b);
  if (s.firstMember())
    do {
      const k = s.key();
      if (!s.keyIs(k, TOP_LOGPROBS)) {
        s.skipValue();
        continue;
      }
      if (top) throw GIVE_UP;
      top = true;
      s.expect(0x5b);
      if (!s.firstElement()) throw GIVE_UP;
      st.c.clear();
      st.nextEntry(V);
      s.expect(0x7b);
      if (s.firstMember())
        do {
          const key = s.key();
          if (!startsWith(s, key, TOKEN_ID)) throw GIVE_UP;
          const id = tokenIdOf(s, key + TOKEN_ID.length);
          st.push(id, s.number(), 0, V);
        } while (s.nextMember());
      writeRow(st.c, ctx, out, row, AT);
      while (s.nextElement()) s.skipValue();
    } while (s.nextMember());
  if (!top) throw GIVE_UP;
}

function startsWith(s: JsonScanner, start: number, prefix: Uint8Array): boolean {
  if (s.keyEnd - start < prefix.length) return false;
  for (let j = 0; j < prefix.length; j++) if (s.b[start + j] !== prefix[j]) return false;
  return true;
}

/** The digits after "token_id:" up to the key's end (one or more), or give up. */
function tokenIdOf(s: JsonScanner, from: number): number {
  const len = s.keyEnd - from;
  if (len < 1 || len > 9) throw GIVE_UP;
  let n = 0;
  for (let j = from; j < s.keyEnd; j++) {
    const d = (s.b[j] ?? 0) - 48;
    if (d < 0 || d > 9) throw GIVE_UP;
    n = n * 10 + d;
  }
  return n;
}
