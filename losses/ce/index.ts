// ce: hard-label cross-entropy, −log_softmax(z)[y], always at T = 1 and never scaled by T².
// Gradient: softmax(z) − onehot(y). Hard distillation is ce on the teacher's top-1 id.
import { z } from 'zod';
import { defineLoss } from '../define.js';

export default defineLoss({
  id: 'ce',
  description: 'cross-entropy against hard labels (-100 = ignored), T = 1',
  target: 'hard',
  params: z.object({}).strict(),
});
