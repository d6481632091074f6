// CacheRows helpers: views of a row range, fresh row arrays, and copies between them (n rows, ids/logp n × k,
// samples n × s).
import type { CacheRows } from '../api.js';

/** The rows [a, b) of a CacheRows, as views. */
export function sliceRows(rows: CacheRows, a: number, b: number, k: number, s: number): CacheRows {
  const out: CacheRows = {
    seq: rows.seq.subarray(a, b),
    pos: rows.pos.subarray(a, b),
    ids: rows.ids.subarray(a * k, b * k),
    logp: rows.logp.subarray(a * k, b * k),
    tail: rows.tail.subarray(a, b),
  };
  if (rows.samples && rows.sampleCounts) {
    out.samples = rows.samples.subarray(a * s, b * s);
    out.sampleCounts = rows.sampleCounts.subarray(a * s, b * s);
  }
  return out;
}

/** Zeroed arrays for n rows (with sample columns when s > 0). */
export function allocRows(n: number, k: number, s: number): CacheRows {
  return {
    seq: new Uint32Array(n),
    pos: new Uint32Array(n),
    ids: new Uint32Array(n * k),
    logp: new Float32Array(n * k),
    tail: new Float32Array(n),
    ...(s > 0 ? { samples: new Uint32Array(n * s), sampleCounts: new Uint16Array(n * s) } : {}),
  };
}

/** Copies `src` into `out` from row `o` on (the sample columns where both have them). */
export function copyRows(out: CacheRows, o: number, src: CacheRows, k: number, s: number): void {
  out.seq.set(src.seq, o);
  out.pos.set(src.pos, o);
  out.ids.set(src.ids, o * k);
  out.logp.set(src.logp, o * k);
  out.tail.set(src.tail, o);
  if (out.samples && src.samples) out.samples.set(src.samples, o * s);
  if (out.sampleCounts && src.sampleCounts) out.sampleCounts.set(src.sampleCounts, o * s);
}
