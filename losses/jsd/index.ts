// jsd (β): m = β p + (1−β) q; L = β KL(p‖m) + (1−β) KL(q‖m).
// H = dL/dq_j = (1−β)(log q_j − log m_j) (the other terms of the derivative cancel).
import { z } from 'zod';
import { defineLoss } from '../define.js';

export default defineLoss({
  id: 'jsd',
  description: 'generalized Jensen-Shannon divergence with weight beta on the teacher',
  target: 'soft',
  params: z.object({ beta: z.number().min(0).max(1).default(0.5) }).strict(),
  term: (p, lp, q, lq, { beta }) => {
    const m = beta * p + (1 - beta) * q;
    if (!(m > 0)) return { loss: 0, H: 0 };
    const lm = Math.log(m);
    let loss = 0;
    if (p > 0) loss += beta * p * (lp - lm);
    if (q > 0) loss += (1 - beta) * q * (lq - lm);
    return { loss, H: (1 - beta) * (lq - lm) };
  },
});
