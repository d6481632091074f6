// token-rkl: the per-token reverse-KL estimate of on-policy distillation. On a token x the student sampled,
// A = log q(x) − log p(x) (student and teacher log-probs of that token) is an unbiased one-sample estimate of
// KL(q‖p) at that position, since E_{x∼q}[log q(x) − log p(x)] = KL(q‖p). Used as a per-token advantage with the
// student's log-prob gradient: the surrogate L = mean_r A_r · log q(x_r), A_r held constant (stop-gradient), has
// E_{x∼q}[∇L] = ∇KL(q‖p) (the score-function gradient; E_q[∇ log q] = 0, so no baseline term is needed).
// Float64, over explicit logits: it needs only the teacher's log-prob of the sampled token, not a top-k support,
// so it stands apart from the fused kinds of the registry (losses/index.ts).
import { at } from '../../src/core/arrays.js';
import { DistillError } from '../../src/core/errors.js';

/** Its id: the `--on-policy-loss` value and the metrics' name for it. */
export const TOKEN_RKL = 'token-rkl';

export interface TokenReverseKlInput {
  /** Student logits [N × V], row-major (float32 from a model, float64 in tests). */
  logits: ArrayLike<number>;
  vocabSize: number;
  /** The sampled token of each row (the label); −100 = not a generated position (skipped). */
  tokens: ArrayLike<number>;
  /** The teacher's log-probability of each row's token [N] (read only where the token is not −100). */
  teacherLogp: ArrayLike<number>;
  /** Student temperature: q = softmax(z / T) (default 1). */
  temperature?: number;
}

export interface TokenReverseKlResult {
  /** Mean over counted rows of A = log q(x) − log p(x): the estimate of the per-token KL(student‖teacher). */
  estimate: number;
  /** Mean over counted rows of A · log q(x), the surrogate whose gradient is returned. */
  surrogate: number;
  /** d surrogate / d logits [N × V] with A held constant: (A / n) (onehot(x) − q) / T per counted row. */
  grad: Float64Array;
  /** Per-row advantages A (NaN on skipped rows). */
  advantage: Float64Array;
  rows: number;
}

export function tokenReverseKl(input: TokenReverseKlInput): TokenReverseKlResult {
  const { logits, vocabSize: V, tokens, teacherLogp } = input;
  const T = input.temperature ?? 1;
  const n = tokens.length;
  if (!Number.isInteger(V) || V <= 0 || logits.length !== n * V || teacherLogp.length !== n || !(T > 0)) {
    throw new DistillError('E_USAGE', 'token-rkl inputs have the wrong shape', {
      expected: `logits N × V, tokens N, teacherLogp N, temperature > 0 (V = ${V})`,
      found: `${logits.length} logits, ${n} tokens, ${teacherLogp.length} teacher log-probs, temperature ${T}`,
    });
  }
  const grad = new Float64Array(n * V);
  const advantage = new Float64Array(n).fill(NaN);
  let est = 0,
    sur = 0,
    rows = 0;
  const logq = new Float64Array(V);
  const pass = (weight: number): void => {
    for (let r = 0; r < n; r++) {
      const x = at(tokens, r);
      if (x === -100) continue;
      if (!(x >= 0 && x < V))
        throw new DistillError('E_USAGE', `token-rkl: token ${x} of row ${r} is outside the vocabulary`, {
          expected: `an id in [0, ${V}) or −100`,
        });
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, at(logits, r * V + v) / T);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(at(logits, r * V + v) / T - m);
      const lse = m + Math.log(s);
      for (let v = 0; v < V; v++) logq[v] = at(logits, r * V + v) / T - lse;
      const lqx = at(logq, x);
      const a = lqx - at(teacherLogp, r);
      if (!Number.isFinite(a))
        throw new DistillError('E_NON_FINITE', `token-rkl: non-finite advantage at row ${r}`, {
          found: `log q = ${lqx}, teacher log p = ${at(teacherLogp, r)}`,
        });
      if (weight === 0) {
        rows += 1;
        continue;
      }
      advantage[r] = a;
      est += a;
      sur += a * lqx;
      for (let v = 0; v < V; v++) grad[r * V + v] = (-weight * a * Math.exp(at(logq, v))) / T;
      grad[r * V + x] = at(grad, r * V + x) + (weight * a) / T;
    }
  };
  pass(0);
  if (rows > 0) pass(1 / rows);
  return { estimate: rows ? est / rows : 0, surrogate: rows ? sur / rows : 0, grad, advantage, rows };
}
