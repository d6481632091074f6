// Server-side SVG charts (no scripts, no external resources): line charts of [x, y] series with optional
// horizontal reference lines, and bar charts. Used by `distill report` and `distill schedule plot --svg`.

export interface LineSeries {
  name: string;
  color: string;
  points: Array<[number, number]>;
  /** SVG stroke-dasharray, e.g. "6 3". */
  dash?: string;
  /** Stroke opacity (raw series drawn faintly behind their smoothed curve); default 1. */
  opacity?: number;
  /** Stroke width; default 2.5. */
  width?: number;
  /** Whether the legend lists it; default true. */
  legend?: boolean;
  /** Draw a dot at each point (sparse series such as calibration bins). */
  markers?: boolean;
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
  xMin?: number;
  xMax?: number;
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

/** Width of `s` in px at the charts' 12 px sans-serif (average glyph ≈ 0.6 em; wide enough not to collide). */
export function textWidth(s: string): number {
  return s.length * 7.2;
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
  // Small values (learning rates) in exponent form: 7.5e-4, not 0.00075, so the labels stay short.
  if (a < 1e-2)
    return v
      .toExponential(2)
      .replace(/\.?0+e/, 'e')
      .replace('e-', 'e−');
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

/** Widest legend column beside a line chart, px. */
const LEGEND_MAX = 300;

/** Bar labels longer than this are cut (with …); the full label stays in a <title> and in the tables. */
const LABEL_MAX = 24;

function frame(
  title: string,
  w: number,
  h: number,
  yLabel?: string,
  xLabel?: string,
  m: { top: number; bottom: number } = MARGIN,
): string[] {
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${escapeXml(title)}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${w}" height="${h}" fill="#ffffff"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  if (yLabel)
    parts.push(
      `<text transform="translate(14 ${(m.top + h - m.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
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
function legend(series: LineSeries[], lx: number, textRoom: number): string[] {
  const fit = (name: string) => {
    const max = Math.max(4, Math.floor(textRoom / textWidth('x')));
    return name.length > max ? `${name.slice(0, max - 1)}…` : name;
  };
  return series
    .filter((s) => s.legend !== false)
    .flatMap((s, i) => {
      const ly = MARGIN.top + 14 + i * 16;
      return [
        `<line x1="${lx}" x2="${lx + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="3"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
        `<text x="${lx + 26}" y="${ly}" fill="#222"><title>${escapeXml(s.name)}</title>${escapeXml(fit(s.name))}</text>`,
      ];
    });
}

/** A line chart as one <svg> element; each series is a <path class="series" data-series="name">. */
export function lineChartSvg(o: LineChartOptions): string {
  const w = o.width ?? 640;
  const h = o.height ?? 320;
  // The legend column fits the longest name it lists, within LEGEND_MAX px (longer names are cut with …).
  const listed = o.series.filter((s) => s.legend !== false).map((s) => textWidth(s.name));
  const legendW = o.legend === 'right' ? Math.min(LEGEND_MAX, Math.max(120, 40 + Math.max(0, ...listed))) : 0;
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
  const x0 = o.xMin ?? Math.min(...xs);
  let x1 = o.xMax ?? Math.max(...xs);
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
    const opacity = s.opacity !== undefined ? ` stroke-opacity="${s.opacity}"` : '';
    // Faint raw series are context, not data to pick out: they are not marked as series.
    const cls = s.legend === false ? 'raw' : 'series';
    parts.push(
      `<path class="${cls}" data-series="${escapeXml(s.name)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2.5}"${dash}${opacity}/>`,
    );
    if (s.markers)
      for (const [x, y] of s.points)
        parts.push(`<circle cx="${r(X(x))}" cy="${r(Y(y))}" r="3.5" fill="${s.color}"${opacity}/>`);
  }
  // Legend: top-left inside the plot area, or in the reserved column on the right.
  parts.push(...legend(series, legendW ? MARGIN.left + pw + 12 : MARGIN.left + 8, legendW ? legendW - 40 : w));
  parts.push('</svg>');
  return parts.join('\n');
}

/** A bar chart (one bar per label, value printed above) with optional reference lines. */
export function barChartSvg(o: BarChartOptions): string {
  const w = o.width ?? 640;
  const digits = o.digits ?? 3;
  const bars = o.bars.filter((b) => Number.isFinite(b.value));
  const refs = (o.refLines ?? []).filter((x) => Number.isFinite(x.y));
  // Labels too wide for their slot are cut to LABEL_MAX characters (the full name in a <title>) and, if still
  // too wide, turned 35°; the chart grows downwards by what they need, so the plot keeps its height.
  const label = (s: string) => (s.length > LABEL_MAX ? `${s.slice(0, LABEL_MAX - 1)}…` : s);
  const longest = Math.max(0, ...bars.map((b) => textWidth(label(b.label))));
  const slanted = longest > (w - MARGIN.left - MARGIN.right) / Math.max(1, bars.length) - 6;
  const slant = (35 * Math.PI) / 180;
  const labelDepth = slanted ? Math.ceil(longest * Math.sin(slant)) : 0;
  // A slanted label runs down to the left of its bar: the first one gets the room it needs on the left.
  const firstW = bars[0] ? textWidth(label(bars[0].label)) : 0;
  let left = MARGIN.left;
  for (let k = 0; k < 3 && slanted; k++) {
    const slotK = (w - left - MARGIN.right) / Math.max(1, bars.length);
    left = Math.max(MARGIN.left, Math.ceil(firstW * Math.cos(slant) - slotK / 2) + 8);
  }
  const pw = w - left - MARGIN.right;
  const slot = pw / Math.max(1, bars.length);
  // Reference lines are named in a key above the plot, where no bar or value label can cover the name.
  const top = MARGIN.top + 16 * refs.length;
  const ph = (o.height ?? 300) - MARGIN.top - MARGIN.bottom;
  const h = top + ph + MARGIN.bottom + labelDepth;
  const parts = frame(o.title, w, h, o.yLabel, undefined, { top, bottom: MARGIN.bottom + labelDepth });
  if (bars.length === 0) {
    parts.push(`<text x="${w / 2}" y="${h / 2}" text-anchor="middle" fill="#666">no data</text></svg>`);
    return parts.join('\n');
  }
  const vals = [...bars.map((b) => b.value), ...refs.map((x) => x.y)];
  const y0 = Math.min(0, ...vals);
  const y1 = Math.max(...vals) * 1.12 || 1;
  const Y = (y: number) => top + (1 - (y - y0) / (y1 - y0)) * ph;
  const r = (v: number) => v.toFixed(1);
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${left}" x2="${left + pw}" y1="${r(Y(t))}" y2="${r(Y(t))}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${left - 6}" y="${r(Y(t) + 4)}" text-anchor="end" fill="#444">${fmtTick(t)}</text>`);
  }
  const bw = Math.min(80, slot * 0.6);
  const base = top + ph;
  bars.forEach((b, i) => {
    const cx = left + slot * (i + 0.5);
    const barTop = Y(Math.max(b.value, 0));
    const barBottom = Y(Math.min(b.value, 0));
    parts.push(
      `<rect class="bar" data-bar="${escapeXml(b.label)}" x="${r(cx - bw / 2)}" y="${r(barTop)}" width="${r(bw)}" height="${r(Math.max(1, barBottom - barTop))}" fill="${b.color}"/>`,
    );
    parts.push(
      `<text x="${r(cx)}" y="${r(barTop - 4)}" text-anchor="middle" fill="#222">${b.value.toFixed(digits)}</text>`,
    );
    const title = `<title>${escapeXml(b.label)}</title>`;
    parts.push(
      slanted
        ? `<text class="bar-label" x="${r(cx)}" y="${base + 14}" text-anchor="end" transform="rotate(-35 ${r(cx)} ${base + 14})" fill="#222">${title}${escapeXml(label(b.label))}</text>`
        : `<text class="bar-label" x="${r(cx)}" y="${base + 16}" text-anchor="middle" fill="#222">${title}${escapeXml(label(b.label))}</text>`,
    );
  });
  parts.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  refs.forEach((ref, i) => {
    parts.push(
      `<line class="ref" data-ref="${escapeXml(ref.label)}" x1="${left}" x2="${left + pw}" y1="${r(Y(ref.y))}" y2="${r(Y(ref.y))}" stroke="${ref.color}" stroke-width="2" stroke-dasharray="8 4"/>`,
    );
    const ky = MARGIN.top + 12 + 16 * i;
    parts.push(
      `<line x1="${left}" x2="${left + 24}" y1="${ky - 4}" y2="${ky - 4}" stroke="${ref.color}" stroke-width="2" stroke-dasharray="8 4"/>`,
      `<text x="${left + 30}" y="${ky}" fill="${ref.color}">${escapeXml(ref.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
