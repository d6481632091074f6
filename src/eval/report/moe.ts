// The mixture-of-experts part of a report: per MoE student, a heatmap of each MoE layer's expert load over
// training (share of the layer's routing slots per expert and step, dead experts struck through) and a table of
// the held-out routing (load shares, max/mean load, router entropy) with the experts dead at the end of training.
import { heatmapSvg } from '../../charts/heatmap.js';
import type { MoeLayerMetrics } from '../../core/moe.js';
import type { RunData } from './read.js';

/** Columns at most in a heatmap: longer runs average neighbouring steps. */
const MAX_COLUMNS = 120;

export interface MoeLayerSummary {
  layer: number;
  /** Held-out share of the routing slots per expert (eval.json), when evaluated. */
  heldOutShare: number[] | null;
  heldOutMaxOverMean: number | null;
  heldOutEntropy: number | null;
  /** Experts flagged dead at the last logged step. */
  deadAtEnd: number[];
}

export interface MoeSummary {
  experts: number;
  activeExperts: number;
  sharedExperts: number;
  every: number;
  layers: MoeLayerSummary[];
}

const share = (load: number[]): number[] => {
  const total = load.reduce((a, b) => a + b, 0);
  return load.map((c) => (total > 0 ? c / total : 0));
};

export function moeSummary(r: RunData): MoeSummary | undefined {
  const moe = r.config?.moe;
  if (!moe) return undefined;
  const last = r.metrics[r.metrics.length - 1]?.moe ?? [];
  const heldOut = new Map((r.eval.moe ?? []).map((m) => [m.layer, m]));
  const layers = [...new Set([...last.map((m) => m.layer), ...heldOut.keys()])].sort((a, b) => a - b);
  return {
    experts: moe.experts,
    activeExperts: moe.activeExperts,
    sharedExperts: moe.sharedExperts,
    every: moe.every,
    layers: layers.map((layer) => {
      const h = heldOut.get(layer);
      return {
        layer,
        heldOutShare: h ? share(h.load) : null,
        heldOutMaxOverMean: h ? h.maxOverMean : null,
        heldOutEntropy: h ? h.entropy : null,
        deadAtEnd: last.find((m) => m.layer === layer)?.dead ?? [],
      };
    }),
  };
}

/** "8 routed (top-1) + 1 shared, every 2nd layer", or "—" for a dense model. */
export function expertsLabel(m: MoeSummary | undefined): string {
  if (!m) return '—';
  const every =
    m.every === 1 ? 'every layer' : `every ${m.every}${m.every === 2 ? 'nd' : m.every === 3 ? 'rd' : 'th'} layer`;
  return `${m.experts} routed (top-${m.activeExperts}) + ${m.sharedExperts} shared, ${every}`;
}

/** One heatmap per MoE layer of one run: rows = experts, columns = (binned) optimizer steps, value = load share. */
export function expertLoadCharts(r: RunData): string[] {
  const rows = r.metrics.filter((m) => m.moe && m.moe.length);
  const layers = [...new Set(rows.flatMap((m) => (m.moe ?? []).map((x) => x.layer)))].sort((a, b) => a - b);
  const E = r.config?.moe?.experts ?? 0;
  return layers.map((layer) => {
    const per: Array<{ step: number; m: MoeLayerMetrics }> = rows.flatMap((row) => {
      const m = row.moe?.find((x) => x.layer === layer);
      return m ? [{ step: row.step, m }] : [];
    });
    const bin = Math.max(1, Math.ceil(per.length / MAX_COLUMNS));
    const columns: number[] = [];
    const values: number[][] = Array.from({ length: E }, () => []);
    for (let i = 0; i < per.length; i += bin) {
      const group = per.slice(i, i + bin);
      columns.push(group[group.length - 1]?.step ?? 0);
      const sum = new Array<number>(E).fill(0);
      for (const g of group) share(g.m.load).forEach((v, e) => (sum[e] = (sum[e] ?? 0) + v));
      sum.forEach((v, e) => values[e]?.push(v / group.length));
    }
    const dead = per[per.length - 1]?.m.dead ?? [];
    return heatmapSvg({
      title: `${r.name}: layer ${layer} expert load over training${dead.length ? ` (dead at the end: ${dead.join(', ')})` : ''}`,
      rows: Array.from({ length: E }, (_, e) => `expert ${e}`),
      columns,
      values,
      vmax: Math.max(2 / Math.max(E, 1), ...values.flat()),
      marked: dead,
      xLabel: 'optimizer step',
      legendLabel: 'share of routing slots',
    });
  });
}

/** The held-out routing of every MoE layer of every MoE student, as table rows. */
export function moeTable(students: Array<{ name: string; moe?: MoeSummary }>): { header: string[]; rows: string[][] } {
  const header = ['student', 'layer', 'held-out load share per expert', 'max / mean', 'router entropy', 'dead at end'];
  const pct = (v: number) => `${(100 * v).toFixed(0)}%`;
  const rows = students.flatMap((st) =>
    (st.moe?.layers ?? []).map((l) => [
      st.name,
      String(l.layer),
      l.heldOutShare ? l.heldOutShare.map(pct).join(' ') : '—',
      l.heldOutMaxOverMean === null ? '—' : l.heldOutMaxOverMean.toFixed(2),
      l.heldOutEntropy === null ? '—' : l.heldOutEntropy.toFixed(3),
      l.deadAtEnd.length ? l.deadAtEnd.join(', ') : 'none',
    ]),
  );
  return { header, rows };
}
