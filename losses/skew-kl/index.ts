// skew-kl (α): KL(p ‖ α p + (1−α) q) = Σ_j p_j (log p_j − log m_j), m = α p + (1−α) q.
// H = dL/dq_j = −(1−α) p_j / m_j. Bounded (≤ −log α) where forward-kl is not.
import { z } from 'zod';
import { defineLoss } from '../define.js';

export default defineLoss({
  id: 'skew-kl',
  description: 'skew KL(teacher ‖ alpha·teacher + (1-alpha)·student)',
  target: 'soft',
  params: z.object({ alpha: z.number().min(0).max(1).default(0.1) }).strict(),
  term: (p, lp, q, _lq, { alpha }) => {
    const m = alpha * p + (1 - alpha) * q;
    if (!(p > 0) || !(m > 0)) return { loss: 0, H: 0 };
    return { loss: p * (lp - Math.log(m)), H: (-(1 - alpha) * p) / m };
  },
});
