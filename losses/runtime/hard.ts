// Hard distillation targets: the teacher's most probable cached id per row (N), for `ce`.
import { at } from '../../src/core/arrays.js';
import { DistillError } from '../../src/core/errors.js';
import type { TeacherInput } from './prepare.js';

/**
 * The teacher's top-1 id per row (the largest valid log-probability; −inf entries are padding).
 * Rows masked in `mask` (label −100) and rows without a valid entry get −100.
 */
export function teacherTop1Labels(teacher: TeacherInput, n: number, mask?: Int32Array): Int32Array {
  const { ids, logprobs, k } = teacher;
  if (!Number.isInteger(k) || k <= 0 || ids.length !== n * k || logprobs.length !== n * k) {
    throw new DistillError('E_USAGE', 'teacher top-k has the wrong shape', {
      expected: `n × k = ${n} × ${k} ids and log-probabilities`,
      found: `${ids.length} ids, ${logprobs.length} log-probabilities`,
    });
  }
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let best = -1;
    for (let j = 0; j < k; j++) {
      const a = at(logprobs, r * k + j);
      if (a > -Infinity && (best < 0 || a > at(logprobs, r * k + best))) best = j;
    }
    out[r] = (mask && mask[r] === -100) || best < 0 ? -100 : at(ids, r * k + best);
  }
  return out;
}
