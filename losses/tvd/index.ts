// tvd: total variation ½ Σ_j |p_j − q_j|; H = dL/dq_j = ½ sign(q_j − p_j) (0 where equal).
import { z } from 'zod';
import { defineLoss } from '../define.js';

export default defineLoss({
  id: 'tvd',
  description: 'total variation distance on the cached top-k support',
  target: 'soft',
  params: z.object({}).strict(),
  term: (p, _lp, q) => ({ loss: 0.5 * Math.abs(q - p), H: q > p ? 0.5 : q < p ? -0.5 : 0 }),
});
