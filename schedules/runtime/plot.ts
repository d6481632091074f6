// Samples a schedule over steps 0..N−1 (optionally replaying a run's metrics.jsonl so adaptive schedules
// see real losses) and draws the points as a terminal chart or an SVG.
import { lineChartSvg, paletteColor, terminalChart } from '../../src/charts/index.js';
import { DistillError } from '../../src/core/errors.js';
import { readMetricsLog } from '../../src/data/metrics-log.js';
import { resolveScheduleWith, type LoadScheduleOptions, type ScheduleRegistry } from './load.js';
import { ScheduleRunner } from './runner.js';

export interface SchedulePoint {
  step: number;
  hard: number;
  soft: number;
  temperature?: number;
  /** The share of on-policy steps, when the schedule returns one. */
  onPolicy?: number;
}

export interface PlotScheduleOptions extends LoadScheduleOptions {
  steps: number;
  params?: unknown;
  /** Tokens per optimizer step, for `tokensSeen` (default 0). */
  tokensPerStep?: number;
  /** A metrics.jsonl whose step i line is observed after step i (adaptive schedules react to it). */
  metricsFile?: string;
}

export interface SchedulePlot {
  id: string;
  source: string;
  params: unknown;
  totalSteps: number;
  points: SchedulePoint[];
}

/** Validated weights at every step 0..steps−1 with totalSteps = steps. */
export async function plotScheduleWith(
  registry: ScheduleRegistry,
  spec: string,
  opts: PlotScheduleOptions,
): Promise<SchedulePlot> {
  if (!Number.isInteger(opts.steps) || opts.steps < 1) {
    throw new DistillError('E_USAGE', 'invalid `steps`', {
      expected: 'a whole number ≥ 1',
      found: String(opts.steps),
      field: 'steps',
    });
  }
  const schedule = await resolveScheduleWith(registry, spec, opts.params, opts);
  const runner = new ScheduleRunner(schedule);
  const metrics = opts.metricsFile ? readMetricsLog(opts.metricsFile).rows : [];
  const points: SchedulePoint[] = [];
  for (let step = 0; step < opts.steps; step++) {
    const w = runner.weights({ step, totalSteps: opts.steps, tokensSeen: step * (opts.tokensPerStep ?? 0) });
    points.push({
      step,
      hard: w.hard,
      soft: w.soft,
      ...(w.temperature === undefined ? {} : { temperature: w.temperature }),
      ...(w.onPolicy === undefined ? {} : { onPolicy: w.onPolicy }),
    });
    const m = metrics[step];
    if (m) runner.observe(m);
  }
  return { id: schedule.id, source: schedule.source, params: schedule.params, totalSteps: opts.steps, points };
}

/** Terminal rendering of a schedule plot: weights (and the on-policy share λ), then the temperature if the schedule sets one. */
export function renderPlotText(plot: SchedulePlot, width = 64): string {
  const pts = plot.points;
  const out = [
    terminalChart(
      [
        { name: 'hard', mark: 'h', values: pts.map((p) => p.hard) },
        { name: 'soft', mark: 's', values: pts.map((p) => p.soft) },
        ...(pts.some((p) => p.onPolicy !== undefined)
          ? [{ name: 'onPolicy', mark: 'o', values: pts.map((p) => p.onPolicy ?? 0) }]
          : []),
      ],
      { width, title: `schedule ${plot.id}: weights over ${plot.totalSteps} steps` },
    ),
  ];
  if (pts.some((p) => p.temperature !== undefined)) {
    out.push(
      terminalChart([{ name: 'temperature', mark: 't', values: pts.map((p) => p.temperature ?? NaN) }], {
        width,
        height: 6,
        title: 'temperature',
        fromZero: false,
      }),
    );
  }
  return out.join('\n\n');
}

/** SVG rendering: hard and soft weights, and the temperature on its own chart when present. */
export function renderPlotSvg(plot: SchedulePlot): string {
  const pts = plot.points;
  const weights = lineChartSvg({
    title: `schedule ${plot.id}: weights over ${plot.totalSteps} steps`,
    xLabel: 'step',
    yLabel: 'weight',
    legend: 'right',
    yMin: 0,
    yMax: Math.max(1, ...pts.map((p) => Math.max(p.hard, p.soft))),
    series: [
      { name: 'hard', color: paletteColor(0), points: pts.map((p) => [p.step, p.hard]) },
      { name: 'soft', color: paletteColor(1), points: pts.map((p) => [p.step, p.soft]) },
      ...(pts.some((p) => p.onPolicy !== undefined)
        ? [
            {
              name: 'onPolicy',
              color: paletteColor(3),
              points: pts.map((p): [number, number] => [p.step, p.onPolicy ?? 0]),
            },
          ]
        : []),
    ],
  });
  if (!pts.some((p) => p.temperature !== undefined)) return `${weights}\n`;
  const temp = lineChartSvg({
    title: 'temperature',
    xLabel: 'step',
    yLabel: 'T',
    height: 220,
    legend: 'right',
    series: [
      {
        name: 'temperature',
        color: paletteColor(2),
        points: pts.flatMap((p): Array<[number, number]> =>
          p.temperature === undefined ? [] : [[p.step, p.temperature]],
        ),
      },
    ],
  });
  // Two charts stacked in one document.
  const inner = (svg: string, y: number) => svg.replace('<svg ', `<svg y="${y}" `);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="540" viewBox="0 0 640 540">\n${inner(weights, 0)}\n${inner(temp, 320)}\n</svg>\n`;
}
