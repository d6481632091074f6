// reverse-kl: KL(q‖p) = Σ_j q_j (log q_j − log p_j), student q restricted to the support
// (renormalized, or the k ids + tail bucket). H = dL/dq_j = log q_j − log p_j + 1.
import { z } from 'zod';
import { defineLoss } from '../define.js';

export default defineLoss({
  id: 'reverse-kl',
  description: 'KL(student ‖ teacher) on the cached top-k support (mode-seeking)',
  target: 'soft',
  params: z.object({}).strict(),
  term: (p, lp, q, lq) => ({ loss: q > 0 ? q * (lq - lp) : 0, H: lq - lp + 1 }),
});
