// The report's training and calibration views: every training curve smoothed (EMA) over its raw values drawn
// faintly, the learning rate, agreement with the teacher and the soft (KL) loss over training, the reliability
// diagram from the 15 calibration bins of eval.json, and the table of run settings.
import { escapeXml, lineChartSvg, type LineSeries, type RefLine } from '../../charts/index.js';
import type { MetricsRow } from '../../data/metrics-log.js';
import type { RunData } from './read.js';
import { fmtNum } from './summary.js';

type ColorOf = (name: string) => string;

/**
 * Exponential moving average with bias correction (as TensorBoard's smoothing): the first points are not
 * pulled towards zero. `weight` 0 returns the data.
 */
export function smooth(points: Array<[number, number]>, weight: number): Array<[number, number]> {
  let avg = 0;
  let n = 0;
  const out: Array<[number, number]> = [];
  for (const [x, y] of points) {
    if (!Number.isFinite(y)) continue;
    avg = weight * avg + (1 - weight) * y;
    n += 1;
    out.push([x, avg / (1 - weight ** n)]);
  }
  return out;
}

/**
 * The EMA weight for a curve of `points` steps: a window of about 4% of the run (at least 3 steps), so that
 * noise averages out but the shape stays; none for fewer than 10 points, at most 0.98.
 */
export function smoothingFor(points: number): number {
  if (points < 10) return 0;
  const window = Math.max(3, points / 25);
  return Math.min(0.98, 1 - 2 / (window + 1));
}

/** Each run's curve twice: the raw values faint and thin, the smoothed ones on top (the legend lists those). */
function smoothedSeries(runs: RunData[], colorOf: ColorOf, pick: (m: MetricsRow) => number): LineSeries[] {
  return runs.flatMap((r) => {
    const raw = r.metrics.map((m): [number, number] => [m.step, pick(m)]).filter(([, y]) => Number.isFinite(y));
    if (!raw.length) return [];
    const color = colorOf(r.name);
    const dash = r.eval.baseline ? { dash: '6 3' } : {};
    return [
      { name: `${r.name} (raw)`, color, points: raw, opacity: 0.25, width: 1, legend: false },
      { name: r.name, color, points: smooth(raw, smoothingFor(raw.length)), ...dash },
    ];
  });
}

const CURVE = { xLabel: 'optimizer step', width: 1000, legend: 'right' as const };

/** Hard-label CE (teacher's held-out CE as reference), the weighted loss, agreement, the soft loss, the lr. */
export function trainingCharts(runs: RunData[], colorOf: ColorOf, teacherRef: RefLine[]): string[] {
  const distilled = runs.filter((r) => !r.eval.baseline);
  return [
    lineChartSvg({
      ...CURVE,
      title: 'Training hard-label cross-entropy per student (smoothed; raw values faint)',
      yLabel: 'CE (nats)',
      series: smoothedSeries(runs, colorOf, (m) => m.hardLoss),
      refLines: teacherRef,
      height: 360,
    }),
    lineChartSvg({
      ...CURVE,
      title: 'Training loss (weighted hard + soft) per student',
      yLabel: 'loss',
      series: smoothedSeries(runs, colorOf, (m) => m.loss),
      height: 320,
    }),
    lineChartSvg({
      ...CURVE,
      title: "Top-1 agreement with the teacher over training (the cache's top-1)",
      yLabel: 'fraction',
      series: smoothedSeries(distilled, colorOf, (m) => m.agreement),
      height: 300,
    }),
    lineChartSvg({
      ...CURVE,
      title: 'Soft loss over training (the KL to the teacher for forward-kl, × T²)',
      yLabel: 'nats',
      series: smoothedSeries(distilled, colorOf, (m) => m.softLoss),
      height: 300,
    }),
    lineChartSvg({
      ...CURVE,
      title: 'Learning rate',
      yLabel: 'lr',
      yMin: 0,
      series: runs.map((r) => ({
        name: r.name,
        color: colorOf(r.name),
        points: r.metrics.map((m): [number, number] => [m.step, m.lr]),
        ...(r.eval.baseline ? { dash: '6 3' } : {}),
      })),
      height: 260,
    }),
  ];
}

/** Accuracy against confidence in each of the 15 bins with data (the diagonal is perfect calibration). */
export function reliabilityDiagram(runs: RunData[], colorOf: ColorOf): string {
  const series: LineSeries[] = runs
    .map((r) => ({
      name: `${r.name} (ECE ${fmtNum(r.eval.ece, 3)})`,
      color: colorOf(r.name),
      markers: true,
      points: r.eval.calibration
        .filter((b) => b.count > 0 && Number.isFinite(b.confidence) && Number.isFinite(b.accuracy))
        .map((b): [number, number] => [b.confidence, b.accuracy]),
    }))
    .filter((s) => s.points.length > 0);
  return lineChartSvg({
    title: 'Reliability diagram: held-out accuracy against confidence (15 bins)',
    xLabel: 'mean confidence in the bin',
    yLabel: 'accuracy',
    xMin: 0,
    xMax: 1,
    yMin: 0,
    yMax: 1,
    width: 760,
    height: 440,
    legend: 'right',
    series: [
      {
        name: 'perfectly calibrated',
        color: '#999999',
        dash: '4 4',
        width: 1.5,
        points: [
          [0, 0],
          [1, 1],
        ],
      },
      ...series,
    ],
  });
}

/** The settings each run was trained and scored with, as table rows (— where a file does not record one). */
export function settingsTable(runs: RunData[]): { header: string[]; rows: string[][] } {
  const header = [
    'student',
    'lr (min, warmup)',
    'batch × accum',
    'steps',
    'seed',
    'loss (support)',
    'T',
    'schedule',
    'k',
    'cache encoding',
    'held-out data',
    'teacher',
  ];
  const rows = runs.map((r) => {
    const s = r.settings;
    const e = r.eval;
    return [
      r.name,
      s ? `${s.lr} (${s.minLr}, ${s.warmupSteps})` : '—',
      s ? `${s.batchSize} × ${s.gradAccum}` : '—',
      s ? String(s.steps) : String(r.metrics.length),
      s ? String(s.seed) : '—',
      s ? (s.cache === null ? 'ce only' : `${s.loss} (${s.support})`) : '—',
      s && s.cache !== null ? String(s.temperature) : '—',
      s?.schedule ?? '—',
      r.cacheInputs ? String(r.cacheInputs.k) : '—',
      r.cacheInputs
        ? `ids ${r.cacheInputs.encodings.ids}, logp ${r.cacheInputs.encodings.logp}, ${r.cacheInputs.encodings.compression}`
        : '—',
      s ? `${s.dataset.slice(0, 12)}…` : '—',
      e.heldOut ? `${e.heldOut.sequences} × ${e.heldOut.seqLen}, ${e.heldOut.sha256.slice(0, 12)}…` : '—',
      e.reference ? `${e.reference.name} ${e.reference.sha256.slice(0, 12)}…` : '—',
    ];
  });
  return { header, rows };
}

/** A note for runs reported together although scored on different data or teachers. */
export function mixedNote(items: string[]): string {
  return `<p class="warning"><b>Mixed comparison:</b> ${items.map(escapeXml).join('; ')}.</p>`;
}
