// A server-drawn SVG heatmap: rows × columns of values in [0, vmax], one shaded cell each (white → the colour),
// with row labels, x ticks from the column positions and a legend bar. The report draws each MoE layer's expert
// load over training with it (rows = experts, columns = optimizer steps).
import { escapeXml, niceTicks } from './svg.js';

export interface HeatmapOptions {
  title: string;
  /** Row labels, top to bottom. */
  rows: string[];
  /** The x value of each column (e.g. its optimizer step), ascending. */
  columns: number[];
  /** values[row][column]; NaN draws an empty cell. */
  values: number[][];
  /** The value drawn in full colour (default: the largest value). */
  vmax?: number;
  color?: string;
  /** Rows to mark (e.g. dead experts): their label is drawn in this colour and struck through. */
  marked?: number[];
  xLabel?: string;
  legendLabel?: string;
  width?: number;
}

const M = { left: 84, right: 90, top: 34, bottom: 44 };

/** Mixes white and `hex` (#rrggbb) by t ∈ [0, 1]. */
function shade(hex: string, t: number): string {
  const c = (i: number) => parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16);
  const mix = (v: number) => Math.round(255 + (v - 255) * Math.min(1, Math.max(0, t)));
  return `rgb(${mix(c(0))},${mix(c(1))},${mix(c(2))})`;
}

export function heatmapSvg(o: HeatmapOptions): string {
  const color = o.color ?? '#1f4e9c';
  const rowH = 18;
  const w = o.width ?? 1000;
  const ph = Math.max(1, o.rows.length) * rowH;
  const h = M.top + ph + M.bottom;
  const pw = w - M.left - M.right;
  const finite = o.values.flat().filter(Number.isFinite);
  const vmax = o.vmax ?? (finite.length ? Math.max(...finite) : 1);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${escapeXml(o.title)}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${w}" height="${h}" fill="#ffffff"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(o.title)}</text>`,
  ];
  const n = o.columns.length;
  if (n === 0 || o.rows.length === 0) {
    parts.push(`<text x="${w / 2}" y="${M.top + ph / 2}" text-anchor="middle" fill="#666">no data</text></svg>`);
    return parts.join('\n');
  }
  const cw = pw / n;
  const r = (v: number) => v.toFixed(1);
  const marked = new Set(o.marked ?? []);
  o.rows.forEach((label, i) => {
    const y = M.top + i * rowH;
    const fill = marked.has(i) ? '#d62728' : '#222';
    const strike = marked.has(i) ? ' text-decoration="line-through"' : '';
    parts.push(
      `<text x="${M.left - 6}" y="${r(y + rowH - 5)}" text-anchor="end" fill="${fill}"${strike}>${escapeXml(label)}</text>`,
    );
    const row = o.values[i] ?? [];
    for (let j = 0; j < n; j++) {
      const v = row[j] ?? NaN;
      if (!Number.isFinite(v)) continue;
      parts.push(
        `<rect class="cell" x="${r(M.left + j * cw)}" y="${y}" width="${r(cw + 0.3)}" height="${rowH}" fill="${shade(color, vmax > 0 ? v / vmax : 0)}"/>`,
      );
    }
  });
  parts.push(`<rect x="${M.left}" y="${M.top}" width="${r(pw)}" height="${ph}" fill="none" stroke="#888"/>`);
  const x0 = o.columns[0] ?? 0,
    x1 = o.columns[n - 1] ?? 0;
  const X = (x: number) => M.left + (x1 > x0 ? ((x - x0) / (x1 - x0)) * (pw - cw) + cw / 2 : pw / 2);
  for (const t of niceTicks(x0, x1, 6)) {
    parts.push(
      `<text x="${r(X(t))}" y="${M.top + ph + 16}" text-anchor="middle" fill="#444">${+t.toPrecision(4)}</text>`,
    );
  }
  if (o.xLabel)
    parts.push(`<text x="${r(M.left + pw / 2)}" y="${h - 6}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  // Legend: a vertical ramp from 0 (bottom) to vmax (top).
  const lx = M.left + pw + 16,
    steps = 10;
  for (let s = 0; s < steps; s++) {
    const y = M.top + (ph * (steps - 1 - s)) / steps;
    parts.push(
      `<rect x="${lx}" y="${r(y)}" width="14" height="${r(ph / steps + 0.3)}" fill="${shade(color, (s + 0.5) / steps)}"/>`,
    );
  }
  parts.push(`<text x="${lx + 18}" y="${M.top + 10}" fill="#444">${+vmax.toPrecision(3)}</text>`);
  parts.push(`<text x="${lx + 18}" y="${M.top + ph}" fill="#444">0</text>`);
  if (o.legendLabel)
    parts.push(
      `<text transform="translate(${w - 8} ${M.top + ph / 2}) rotate(90)" text-anchor="middle" fill="#444">${escapeXml(o.legendLabel)}</text>`,
    );
  parts.push('</svg>');
  return parts.join('\n');
}
