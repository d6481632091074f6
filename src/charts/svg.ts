// Server-side SVG charts (no scripts, no external resources): line charts of [x, y] series with optional
// horizontal reference lines, and bar charts. Used by `distill report` and `distill schedule plot --svg`.

export interface LineSeries {
  name: string;
  color: string;
  points: Array<[number, number]>;
  /** SVG stroke-dasharray, e.g. "6 3". */
  dash?: string;
}

export interface RefLine {
  y: number;
  label: string;
  color: string;
}

export interface LineChartOptions {
  title: string;
  series: LineSeries[];
  refLines?: RefLine[];
  width?: number;
  height?: number;
  xLabel?: string;
  yLabel?: string;
  yMin?: number;
  yMax?: number;
  /** Most points drawn per series; longer series are thinned evenly (the last point is always kept). */
  maxPoints?: number;
  /** 'right' reserves a column beside the plot for the legend (for many series); default inside, top-left. */
  legend?: 'inside' | 'right';
}

export interface Bar {
  label: string;
  value: number;
  color: string;
}

export interface BarChartOptions {
  title: string;
  bars: Bar[];
  refLines?: RefLine[];
  width?: number;
  height?: number;
  yLabel?: string;
  /** Digits shown in the value labels. */
  digits?: number;
}

/** A fixed palette with enough contrast against white for the charts' series. */
export const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#17becf',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
];

/** The palette's colour for series i, cycling when there are more series than colours. */
export function paletteColor(i: number): string {
  return PALETTE[i % PALETTE.length] ?? '#000000';
}

const XML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => XML_ENTITIES[c] ?? c);
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  return String(+v.toPrecision(4));
}

function thin(points: Array<[number, number]>, max: number): Array<[number, number]> {
  const finite = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (finite.length <= max) return finite;
  const stride = (finite.length - 1) / (max - 1);
  // Every pick lies in [0, finite.length − 1]: the first and the last point are kept.
  return Array.from({ length: max }, (_, i) => finite[Math.round(i * stride)]).filter((p) => p !== undefined);
}

const MARGIN = { left: 64, right: 16, top: 34, bottom: 44 };

function frame(title: string, w: number, h: number, yLabel?: string, xLabel?: string): string[] {
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${escapeXml(title)}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${w}" height="${h}" fill="#ffffff"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  if (yLabel)
    parts.push(
      `<text transform="translate(14 ${(MARGIN.top + h - MARGIN.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
    );
  if (xLabel)
    parts.push(
      `<text x="${(MARGIN.left + w - MARGIN.right) / 2}" y="${h - 6}" text-anchor="middle">${escapeXml(xLabel)}</text>`,
    );
  return parts;
}

/** The y range: the data's (or the given bounds), padded 5% on a free side; a flat series gets ±0.5. */
function yRange(ys: number[], yMin: number | undefined, yMax: number | undefined): [number, number] {
  let y0 = yMin ?? Math.min(...ys);
  let y1 = yMax ?? Math.max(...ys);
  if (y1 === y0) return [y0 - 0.5, y1 + 0.5];
  const pad = 0.05 * (y1 - y0);
  if (yMin === undefined) y0 -= pad;
  if (yMax === undefined) y1 += pad;
  return [y0, y1];
}

/** One legend entry per series (a line in its colour and dash, then its name), stacked from the top at x = lx. */
function legend(series: LineSeries[], lx: number): string[] {
  return series.flatMap((s, i) => {
    const ly = MARGIN.top + 14 + i * 16;
    return [
      `<line x1="${lx}" x2="${lx + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="3"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
      `<text x="${lx + 26}" y="${ly}" fill="#222">${escapeXml(s.name)}</text>`,
    ];
  });
}

/** A line chart as one <svg> element; each series is a <path class="series" data-series="name">. */
export function lineChartSvg(o: LineChartOptions): string {
  const w = o.width ?? 640;
  const h = o.height ?? 320;
  const legendW = o.legend === 'right' ? 170 : 0;
  const maxPoints = o.maxPoints ?? 1000;
  const series = o.series.map((s) => ({ ...s, points: thin(s.points, maxPoints) }));
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = [
    ...series.flatMap((s) => s.points.map((p) => p[1])),
    ...(o.refLines ?? []).map((r) => r.y).filter(Number.isFinite),
  ];
  const parts = frame(o.title, w, h, o.yLabel, o.xLabel);
  const pw = w - MARGIN.left - MARGIN.right - legendW;
  const ph = h - MARGIN.top - MARGIN.bottom;
  if (xs.length === 0) {
    parts.push(`<text x="${w / 2}" y="${h / 2}" text-anchor="middle" fill="#666">no data</text></svg>`);
    return parts.join('\n');
  }
  const x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x1 === x0) x1 = x0 + 1;
  const [y0, y1] = yRange(ys, o.yMin, o.yMax);
  const X = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * pw;
  const Y = (y: number) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * ph;
  const r = (v: number) => v.toFixed(1);
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + pw}" y1="${r(Y(t))}" y2="${r(Y(t))}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${r(Y(t) + 4)}" text-anchor="end" fill="#444">${fmtTick(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1, 6)) {
    parts.push(
      `<text x="${r(X(t))}" y="${MARGIN.top + ph + 16}" text-anchor="middle" fill="#444">${fmtTick(t)}</text>`,
    );
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  for (const ref of o.refLines ?? []) {
    if (!Number.isFinite(ref.y) || ref.y < y0 || ref.y > y1) continue;
    parts.push(
      `<line class="ref" data-ref="${escapeXml(ref.label)}" x1="${MARGIN.left}" x2="${MARGIN.left + pw}" y1="${r(Y(ref.y))}" y2="${r(Y(ref.y))}" stroke="${ref.color}" stroke-width="2" stroke-dasharray="8 4"/>`,
    );
    parts.push(
      `<text x="${MARGIN.left + pw - 4}" y="${r(Y(ref.y) - 4)}" text-anchor="end" fill="${ref.color}">${escapeXml(ref.label)}</text>`,
    );
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map(([x, y], i) => `${i ? 'L' : 'M'}${r(X(x))} ${r(Y(y))}`).join(' ');
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    parts.push(
      `<path class="series" data-series="${escapeXml(s.name)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="2.5"${dash}/>`,
    );
  }
  // Legend: top-left inside the plot area, or in the reserved column on the right.
  parts.push(...legend(series, legendW ? MARGIN.left + pw + 12 : MARGIN.left + 8));
  parts.push('</svg>');
  return parts.join('\n');
}

/** A bar chart (one bar per label, value printed above) with optional reference lines. */
export function barChartSvg(o: BarChartOptions): string {
  const w = o.width ?? 640;
  const h = o.height ?? 300;
  const digits = o.digits ?? 3;
  const parts = frame(o.title, w, h, o.yLabel);
  const bars = o.bars.filter((b) => Number.isFinite(b.value));
  const pw = w - MARGIN.left - MARGIN.right;
  const ph = h - MARGIN.top - MARGIN.bottom;
  if (bars.length === 0) {
    parts.push(`<text x="${w / 2}" y="${h / 2}" text-anchor="middle" fill="#666">no data</text></svg>`);
    return parts.join('\n');
  }
  const refs = (o.refLines ?? []).filter((x) => Number.isFinite(x.y));
  const vals = [...bars.map((b) => b.value), ...refs.map((x) => x.y)];
  const y0 = Math.min(0, ...vals);
  const y1 = Math.max(...vals) * 1.12 || 1;
  const Y = (y: number) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * ph;
  const r = (v: number) => v.toFixed(1);
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + pw}" y1="${r(Y(t))}" y2="${r(Y(t))}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${r(Y(t) + 4)}" text-anchor="end" fill="#444">${fmtTick(t)}</text>`);
  }
  const slot = pw / bars.length;
  const bw = Math.min(80, slot * 0.6);
  bars.forEach((b, i) => {
    const cx = MARGIN.left + slot * (i + 0.5);
    const top = Y(Math.max(b.value, 0));
    const bottom = Y(Math.min(b.value, 0));
    parts.push(
      `<rect class="bar" data-bar="${escapeXml(b.label)}" x="${r(cx - bw / 2)}" y="${r(top)}" width="${r(bw)}" height="${r(Math.max(1, bottom - top))}" fill="${b.color}"/>`,
    );
    parts.push(
      `<text x="${r(cx)}" y="${r(top - 4)}" text-anchor="middle" fill="#222">${b.value.toFixed(digits)}</text>`,
    );
    parts.push(
      `<text x="${r(cx)}" y="${MARGIN.top + ph + 16}" text-anchor="middle" fill="#222">${escapeXml(b.label)}</text>`,
    );
  });
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  for (const ref of refs) {
    parts.push(
      `<line class="ref" data-ref="${escapeXml(ref.label)}" x1="${MARGIN.left}" x2="${MARGIN.left + pw}" y1="${r(Y(ref.y))}" y2="${r(Y(ref.y))}" stroke="${ref.color}" stroke-width="2" stroke-dasharray="8 4"/>`,
    );
    parts.push(
      `<text x="${MARGIN.left + pw - 4}" y="${r(Y(ref.y) - 4)}" text-anchor="end" fill="${ref.color}">${escapeXml(ref.label)}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}
