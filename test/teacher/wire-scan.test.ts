// The fast byte reader of vLLM replies (vllm-scan.ts over json-scan.ts) against JSON.parse and readScore: on
// the stand-in's real replies it must take the reply and fill identical rows; on any other writing of the same
// JSON (spacing, key order, escapes, number forms) it fills the same rows or gives up; on a broken or wrong
// reply it never fills rows that the slow reader would refuse. Numbers read to the same double as JSON.parse.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/core/random.js';
import { vllmProtocol } from '../../src/teacher/backends/index.js';
import { JsonScanner } from '../../src/teacher/backends/served/json-scan.js';
import type { ScoreContext, ScoreTarget } from '../../src/teacher/backends/served/protocol.js';
import { Reference, vllmReply } from './helpers/served-replies.js';

const scan = vllmProtocol.scanScore;
if (!scan) throw new Error('the vLLM protocol has no fast reader');
const enc = new TextEncoder();
const T = 24;
const nSeq = 3;
const V = 257;

const target = (ctx: ScoreContext): ScoreTarget => {
  const n = ctx.nSeq * ctx.T;
  return {
    ids: new Int32Array(n * ctx.k),
    logp: new Float32Array(n * ctx.k),
    tail: new Float32Array(n),
    ...(ctx.tokens ? { target: new Float32Array(n) } : {}),
  };
};

type Outcome = { ok: true; out: ScoreTarget } | { ok: false; error: string };

function slow(text: string, ctx: ScoreContext): Outcome {
  const out = target(ctx);
  try {
    vllmProtocol.readScore(JSON.parse(text), ctx, out, 0);
    return { ok: true, out };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

function fast(bytes: Uint8Array, ctx: ScoreContext): Outcome {
  const out = target(ctx);
  try {
    scan?.(bytes, ctx, out, 0);
    return { ok: true, out };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

const same = (a: ScoreTarget, b: ScoreTarget) =>
  Buffer.from(a.ids.buffer).equals(Buffer.from(b.ids.buffer)) &&
  Buffer.from(a.logp.buffer).equals(Buffer.from(b.logp.buffer)) &&
  Buffer.from(a.tail.buffer).equals(Buffer.from(b.tail.buffer)) &&
  (a.target === undefined) === (b.target === undefined) &&
  (a.target === undefined || Buffer.from(a.target.buffer).equals(Buffer.from(b.target?.buffer ?? new ArrayBuffer(0))));

/** The fast reader either gives up, or fills exactly the rows the slow reader fills (and the slow one succeeds). */
function agrees(text: string, ctx: ScoreContext): 'fast' | 'slow' {
  const f = fast(typeof text === 'string' ? enc.encode(text) : text, ctx);
  const s = slow(text, ctx);
  if (!f.ok) return 'slow';
  expect(s.ok, `the fast reader took a reply the slow one refuses: ${s.ok ? '' : s.error}`).toBe(true);
  if (s.ok) expect(same(f.out, s.out)).toBe(true);
  return 'fast';
}

let ref: Reference;
const prompts = Array.from({ length: nSeq }, (_, s) => Array.from({ length: T }, (_, t) => (s * 31 + t * 7 + 3) % V));
const replies = new Map<number, string>();
const ctxOf = (k: number): ScoreContext => ({ model: 'teacher', nSeq, T, k, V, firstSeq: 40 });
/** The same, asking for each position's next-token log-prob (on-policy scoring). */
const withTargets = (k: number): ScoreContext => ({ ...ctxOf(k), tokens: Uint32Array.from(prompts.flat()) });

beforeAll(async () => {
  ref = await Reference.load(path.resolve('fixtures/teacher/model.onnx'));
  const dists = await ref.run(prompts);
  for (const k of [1, 5, 20, 64]) {
    const body = {
      model: 'teacher',
      prompt: prompts,
      prompt_logprobs: k,
      logprobs: k,
      return_tokens_as_token_ids: true,
    };
    replies.set(k, vllmReply(body, dists, 'teacher', k));
  }
});
afterAll(() => ref.close());

const reply = (k: number) => {
  const r = replies.get(k);
  if (r === undefined) throw new Error(`no reply for k = ${k}`);
  return r;
};

describe('the fast vLLM reader', () => {
  it('takes the replies vLLM writes and fills the rows JSON.parse and readScore fill, bit for bit', () => {
    for (const k of [1, 5, 20, 64]) expect(agrees(reply(k), ctxOf(k))).toBe('fast');
  });

  it('reads the next-token log-probs as readScore does (the prompt token’s own item), or gives up', () => {
    for (const k of [1, 5, 20]) {
      const ctx = withTargets(k);
      expect(agrees(reply(k), ctx)).toBe('fast');
      const out = target(ctx);
      scan?.(enc.encode(reply(k)), ctx, out, 0);
      expect(out.target?.every((x, i) => ((i + 1) % T === 0 ? Number.isNaN(x) : Number.isFinite(x) && x <= 0))).toBe(
        true,
      );
    }
    // Another token's ids than the ones scored: no item for them, refused by the slow reader.
    const other = { ...withTargets(5), tokens: Uint32Array.from(prompts.flat(), (x) => (x + 1) % V) };
    expect(agrees(reply(5), other)).toBe('slow');
    expect(slow(reply(5), other).ok).toBe(false);
  });

  it('reads the same JSON written otherwise (spacing, key order, escapes, number forms, unknown fields) alike', () => {
    const k = 5;
    const ctx = ctxOf(k);
    const obj = JSON.parse(reply(k)) as unknown;
    // Pretty-printed; keys of every object reversed (numeric keys too); fields vLLM may add later.
    expect(agrees(JSON.stringify(obj, null, 2), ctx)).toBe('fast');
    const reversed = (x: unknown): unknown =>
      Array.isArray(x)
        ? x.map(reversed)
        : x && typeof x === 'object'
          ? Object.fromEntries(
              Object.entries(x)
                .reverse()
                .map(([key, v]) => [key, reversed(v)]),
            )
          : x;
    expect(agrees(JSON.stringify(reversed(obj)), ctx)).toBe('fast');
    const extra = reply(k).replace(
      /"decoded_token":/g,
      '"extra":{"a":[1,-2.5e-3,true,false,null,"\\u00e9\\"\\\\\\/\\b\\f\\n\\r\\t"],"b":{}},"decoded_token":',
    );
    expect(agrees(extra, ctx)).toBe('fast');
    // Escaped and non-ASCII decoded tokens.
    expect(agrees(reply(k).replace(/"decoded_token":"[^"]*"/g, '"decoded_token":"\\u0041\\n\\"é☃"'), ctx)).toBe('fast');
    // Log-probabilities in other number forms, and ranks as 1.0 or 1e0.
    const forms = reply(k)
      .replace(/"logprob":(-[0-9.]+)/g, (_, x: string) => `"logprob":${Number(x).toExponential()}`)
      .replace(/"rank":1,/g, '"rank":1.0,')
      .replace(/"rank":2,/g, '"rank":2e0,');
    expect(agrees(forms, ctx)).toBe('fast');
  });

  it('gives up on what JSON.parse reads otherwise: duplicate keys, duplicate ids, escaped keys', () => {
    const k = 5;
    const ctx = ctxOf(k);
    const text = reply(k);
    // JSON.parse keeps the last of two equal keys; the fast reader never guesses which.
    expect(agrees(text.replace('"logprob":', '"logprob":-0.5,"logprob":'), ctx)).toBe('slow');
    expect(agrees(text.replace('"model":"teacher"', '"model":"teacher","model":"teacher"'), ctx)).toBe('slow');
    expect(agrees(text.replace('"model":"teacher"', '"model":"te\\u0061cher"'), ctx)).toBe('slow');
    expect(agrees(text.replace('"prompt_logprobs":', '"prompt\\u005flogprobs":'), ctx)).toBe('slow');
    // Two keys naming one id ("7" and "07") are two candidates for JSON.parse too: the slow reader judges.
    expect(
      agrees(text.replace(/\{"(\d+)":\{"logprob"/, '{"0$1":{"logprob":-0.1,"rank":99},"$1":{"logprob"'), ctx),
    ).toBe('slow');
  });

  it('never takes a broken or wrong reply: cut short, one byte changed, another model, too few rows', () => {
    const k = 5;
    const ctx = ctxOf(k);
    const text = reply(k);
    const bytes = enc.encode(text);
    const next = mulberry32(7);
    let tried = 0;
    let taken = 0;
    for (let n = 0; n < 300; n++) {
      const cut = Math.floor(next() * bytes.length);
      expect(agrees(text.slice(0, cut), ctx)).toBe('slow');
      // One byte replaced by a JSON-significant one: most breaks the reply, some leave it valid JSON.
      const b = bytes.slice();
      b[Math.floor(next() * b.length)] = enc.encode('{}[],:"\\-0123456789.eEtfnul ')[Math.floor(next() * 29)] ?? 32;
      tried++;
      if (agrees(new TextDecoder().decode(b), ctx) === 'fast') taken++;
    }
    expect(tried).toBe(300);
    expect(taken).toBeLessThan(tried);
    expect(agrees(text.replace('"model":"teacher"', '"model":"other"'), ctx)).toBe('slow');
    expect(agrees(text, { ...ctx, nSeq: nSeq + 1 })).toBe('slow');
    expect(agrees(text, { ...ctx, T: T + 1 })).toBe('slow');
    expect(agrees(text, { ...ctx, k: 6 })).toBe('slow');
    expect(agrees(text, { ...ctx, V: 100 })).toBe('slow');
    expect(agrees(`${text} x`, ctx)).toBe('slow');
    expect(agrees(`\n ${text}\n`, ctx)).toBe('fast');
  });
});

describe('JsonScanner.number', () => {
  const read = (text: string) => {
    const s = new JsonScanner(enc.encode(text));
    const v = s.number();
    expect(s.i, text).toBe(text.length);
    return v;
  };

  it('reads every number to the double JSON.parse gives', () => {
    const fixed = [
      '0',
      '-0',
      '-0.0',
      '1e22',
      '1e23',
      '-1E+2',
      '9007199254740991',
      '9007199254740993',
      '123456789012345678901234567890',
      '4.9e-324',
      '2.2250738585072014e-308',
      '1e-400',
      '1.7976931348623157e308',
      '1e309',
      '0.1',
      '-9999.0',
      '0.000000000000000000000000123',
      '-2.302585124969482',
      '-1.9417053700497604',
    ];
    for (const t of fixed) expect(Object.is(read(t), JSON.parse(t)), t).toBe(true);
    const next = mulberry32(11);
    for (let n = 0; n < 20000; n++) {
      const kind = n % 4;
      const x =
        kind === 0
          ? -next() * 30
          : kind === 1
            ? Math.fround(-next() * 30)
            : kind === 2
              ? (next() - 0.5) * 10 ** Math.floor(next() * 40 - 20)
              : Number(`${Math.floor(next() * 1e6)}e${Math.floor(next() * 60 - 30)}`);
      const t =
        kind === 3
          ? `${Math.floor(next() * 1e6)}.${Math.floor(next() * 1e9)}e${Math.floor(next() * 60 - 30)}`
          : JSON.stringify(x);
      expect(Object.is(read(t), JSON.parse(t)), t).toBe(true);
    }
  });
});
