// forward-kl: KL(p‖q) = Σ_j p_j (log p_j − log q_j).
// renormalize: p = softmax_I(a/T) against the full-vocabulary student s = log_softmax(z/T) (q_j = e^{s_j}),
//   dL/du = σ_T·Σp − p scattered at the ids; bucket: over the k ids plus the tail bucket.
// H = dL/dq_j = −p_j/q_j.
import { z } from 'zod';
import { defineLoss } from '../define.js';

export default defineLoss({
  id: 'forward-kl',
  description: 'KL(teacher ‖ student) on the cached top-k support',
  target: 'soft',
  params: z.object({}).strict(),
  term: (p, lp, q, lq) => ({ loss: p > 0 ? p * (lp - lq) : 0, H: q > 0 ? -p / q : 0 }),
});
