// Is the server's tokenizer the dataset's? A sample of the dataset's ids goes through the server's
// /detokenize and back through /tokenize; with the same tokenizer the ids come back (but for a few at the
// ends, where a cut through a word tokenizes differently), with another they do not.
import { DistillError } from '../../../core/errors.js';
import type { TokenDataset } from '../../../data/index.js';
import { statusOfFailure, type Fleet } from './fleet.js';
import type { WireProtocol } from './protocol.js';

/** Ids sampled from the dataset's first sequence. */
export const SAMPLE_IDS = 64;
/** Share of the sample that must come back as one unbroken run. */
export const ROUND_TRIP_AGREEMENT = 0.75;

/** Length of the longest run of ids the two lists share (dynamic programming over the two short lists). */
export function longestCommonRun(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let best = 0;
  let prev = new Uint16Array(b.length + 1);
  let cur = new Uint16Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const run = a[i - 1] === b[j - 1] ? (prev[j - 1] ?? 0) + 1 : 0;
      cur[j] = run;
      if (run > best) best = run;
    }
    [prev, cur] = [cur, prev];
  }
  return best;
}

export async function checkRoundTrip(
  fleet: Fleet,
  proto: WireProtocol,
  model: string,
  url: string,
  dataset: TokenDataset,
): Promise<void> {
  const sample = Array.from(dataset.tokens.subarray(0, Math.min(dataset.seqLen, SAMPLE_IDS)));
  const unavailable = (e: unknown, path: string) => {
    const f = statusOfFailure(e);
    if (!f) return e;
    return new DistillError('E_TOKENIZER', `cannot check the tokenizer of the server at ${url}`, {
      found: `POST ${path} answered HTTP ${f.status}: ${f.serverMessage ?? ''}`,
      hint: 'pass the served model’s tokenizer (tokenizer.json or its folder) as `tokenizer` to compare its hash with the dataset’s instead',
      subject: url,
    });
  };
  const ask = async <R>(endpoint: WireProtocol['tokenize' | 'detokenize'], body: string, read: (r: unknown) => R) => {
    try {
      return await fleet.call('POST', endpoint.path, body, `POST ${endpoint.path}`, (r) => read(r.json), { one: url });
    } catch (e) {
      throw unavailable(e, endpoint.path);
    }
  };
  const text = await ask(proto.detokenize, proto.detokenize.body(model, sample), proto.detokenize.read);
  const back = await ask(proto.tokenize, proto.tokenize.body(model, text), proto.tokenize.read);
  const run = longestCommonRun(sample, back);
  if (run < ROUND_TRIP_AGREEMENT * sample.length)
    throw new DistillError('E_TOKENIZER', `the server at ${url} tokenizes differently than the dataset's tokenizer`, {
      expected: `${sample.length} ids of ${dataset.path} back from /detokenize then /tokenize (tokenizer ${dataset.tokenizer.name})`,
      found: `${run} in one unbroken run (ids ${sample.slice(0, 8).join(' ')}… → ${back.slice(0, 8).join(' ')}…)`,
      hint: 'prepare the dataset with the served model’s tokenizer',
      subject: url,
    });
}
