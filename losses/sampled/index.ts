// sampled: unbiased teacher-weighted cross-entropy from cached teacher samples.
// With ids x_j drawn from the teacher c_j times (C = Σ c_j): L = −Σ_j (c_j / C) s[x_j],
// an unbiased estimate of −Σ_v p_teacher(v) s_v; dL/du = σ_T − (c/C) scattered at the ids.
import { z } from 'zod';
import { defineLoss } from '../define.js';

export default defineLoss({
  id: 'sampled',
  description: 'cross-entropy against teacher samples weighted by their counts (unbiased)',
  target: 'sampled',
  params: z.object({}).strict(),
});
