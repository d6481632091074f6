// A plain-loop LM head + loss for trainer tests (float64 logits N × V in memory; small shapes only):
// hard = CE on labels (−100 ignored), soft = T²·forward-KL against the renormalized teacher top-k.
import type { LmHeadLossInput, LmHeadLossOutput } from '../../../src/student/ports.js';

export function plainLmHeadLoss(x: LmHeadLossInput): LmHeadLossOutput {
  const { n, dModel: d, vocabSize: V, temperature: T } = x;
  const gw = x.gradWeight ?? 1;
  const dz = new Float64Array(V);
  const gradHidden = new Float32Array(n * d);
  const gradWeight = new Float32Array(V * d);
  const z = new Float64Array(V);
  let count = 0;
  for (let i = 0; i < n; i++) if (x.labels[i]! >= 0) count++;
  count = Math.max(count, 1);
  let hardLoss = 0, softLoss = 0, agree = 0;
  for (let i = 0; i < n; i++) {
    const y = x.labels[i]!;
    if (y < 0) continue;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += x.hidden[i * d + j]! * x.weight[v * d + j]!;
      z[v] = s;
    }
    dz.fill(0);
    let mx = -Infinity, arg = 0;
    for (let v = 0; v < V; v++) if (z[v]! > mx) { mx = z[v]!; arg = v; }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(z[v]! - mx);
    hardLoss += -(z[y]! - mx - Math.log(sum)) / count;
    for (let v = 0; v < V; v++) dz[v] += (x.hardWeight * (Math.exp(z[v]! - mx) / sum - (v === y ? 1 : 0))) / count;
    if (x.teacher && x.softWeight > 0) {
      const { k, ids, logp } = x.teacher;
      if (ids[i * k] === arg) agree += 1 / count;
      let mt = -Infinity;
      for (let v = 0; v < V; v++) mt = Math.max(mt, z[v]! / T);
      let st = 0;
      for (let v = 0; v < V; v++) st += Math.exp(z[v]! / T - mt);
      const lse = mt + Math.log(st);
      let ma = -Infinity;
      for (let j = 0; j < k; j++) ma = Math.max(ma, logp[i * k + j]! / T);
      let sa = 0;
      for (let j = 0; j < k; j++) sa += Math.exp(logp[i * k + j]! / T - ma);
      for (let j = 0; j < k; j++) {
        const lp = logp[i * k + j]! / T - ma - Math.log(sa);
        const p = Math.exp(lp);
        const id = ids[i * k + j]!;
        softLoss += (T * T * p * (lp - (z[id]! / T - lse))) / count;
        dz[id] -= (x.softWeight * T * p) / count;
      }
      for (let v = 0; v < V; v++) dz[v] += (x.softWeight * T * Math.exp(z[v]! / T - lse)) / count;
    }
    for (let v = 0; v < V; v++) {
      const g = dz[v]! * gw;
      if (g === 0) continue;
      for (let j = 0; j < d; j++) {
        gradHidden[i * d + j] += g * x.weight[v * d + j]!;
        gradWeight[v * d + j] += g * x.hidden[i * d + j]!;
      }
    }
  }
  return { loss: x.hardWeight * hardLoss + x.softWeight * softLoss, hardLoss, softLoss, agreement: agree, gradHidden, gradWeight };
}
