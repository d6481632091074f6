// Character-cell line charts for terminals: one column per sampled point, one mark per series ('*' where
// marks meet), a labelled y axis. Used by `distill schedule plot` without --svg.

export interface TermSeries {
  name: string;
  mark: string;
  values: number[];
}

/** A character-cell chart: one column per sampled step, marks for each series ('*' where they meet). */
export function terminalChart(
  series: TermSeries[],
  opts: { width?: number; height?: number; title?: string; fromZero?: boolean } = {},
): string {
  const n = Math.max(0, ...series.map((s) => s.values.length));
  const width = Math.max(8, Math.min(opts.width ?? 64, n || 8));
  const height = Math.max(4, opts.height ?? 12);
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  const lo = opts.fromZero === false ? Math.min(...all) : Math.min(0, ...all);
  let hi = Math.max(...all, lo + 1e-12);
  if (hi - lo < 1e-12) hi = lo + 1;
  const grid = Array.from({ length: height }, () => Array<string>(width).fill(' '));
  for (const s of series) {
    for (let c = 0; c < width; c++) {
      const idx = n <= 1 ? 0 : Math.round((c * (n - 1)) / (width - 1));
      const v = s.values[idx];
      if (v === undefined || !Number.isFinite(v)) continue;
      const row = height - 1 - Math.round(((v - lo) / (hi - lo)) * (height - 1));
      const line = grid[row];
      if (!line) continue;
      const cell = line[c];
      line[c] = cell === ' ' || cell === s.mark ? s.mark : '*';
    }
  }
  const label = (v: number) => v.toPrecision(3).padStart(8);
  const lines: string[] = [];
  if (opts.title) lines.push(opts.title);
  grid.forEach((row, i) => {
    const v = hi - ((hi - lo) * i) / (height - 1);
    const showLabel = i === 0 || i === height - 1 || i === Math.floor((height - 1) / 2);
    lines.push(`${showLabel ? label(v) : ' '.repeat(8)} │${row.join('')}`);
  });
  lines.push(`${' '.repeat(8)} └${'─'.repeat(width)}`);
  const last = String(Math.max(0, n - 1));
  lines.push(`${' '.repeat(10)}0${last.padStart(width - 1)}  (step)`);
  lines.push(
    `${' '.repeat(10)}${series.map((s) => `${s.mark} ${s.name}`).join('   ')}${series.length > 1 ? '   * overlap' : ''}`,
  );
  return lines.join('\n');
}
