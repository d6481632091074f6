// `distill schedule plot <id | path | package>`: the hard/soft weights (and temperature) at every step
// 0..N−1 with totalSteps = N, as a terminal chart, an SVG file, or `{ points: [...] }` with --json.
import path from 'node:path';
import { Args, Flags } from '@oclif/core';
import { DistillError } from '../../../src/core/errors.js';
import { plotSchedule, renderPlotSvg, renderPlotText, type SchedulePlot } from '../../../schedules/index.js';
import { writeFileAtomic } from '../../../src/store/index.js';
import { BaseCommand } from '../../base.js';
import { countFlag, intFlag } from '../../flags.js';

export default class SchedulePlotCommand extends BaseCommand<typeof SchedulePlotCommand> {
  static override description = 'Plot a weighting schedule (built-in id, plugin file or package) over N steps';
  static override examples = [
    '<%= config.bin %> schedule plot hard-to-soft --steps 1000',
    '<%= config.bin %> schedule plot cosine --params \'{"hardEnd":0.2,"temperature":{"start":4,"end":1}}\' --steps 200 --svg cosine.svg',
    '<%= config.bin %> schedule plot ./fixtures/plugins/agreement-gate.mjs --steps 100 --json',
    '<%= config.bin %> schedule plot loss-balance --steps 500 --metrics runs/a/metrics.jsonl',
  ];

  static override args = {
    schedule: Args.string({
      description: 'built-in id, path to an ES module (./x.mjs), or package name',
      required: true,
    }),
  };

  static override flags = {
    steps: countFlag({ description: 'total optimizer steps N (points for steps 0..N−1)', required: true }),
    params: Flags.string({ description: 'schedule params as JSON, e.g. \'{"hard":0.3,"soft":0.7}\'' }),
    svg: Flags.string({ description: 'also write the chart to this SVG file' }),
    metrics: Flags.string({ description: "replay a run's metrics.jsonl so adaptive schedules see real losses" }),
    'tokens-per-step': intFlag({
      description: 'tokens per step, for schedules that read tokensSeen',
      default: 0,
      min: 0,
    }),
    width: intFlag({ description: 'terminal chart width in columns', default: 64, min: 8 }),
  };

  async run(): Promise<SchedulePlot> {
    const f = this.flags;
    let params: unknown;
    if (f.params !== undefined) {
      try {
        params = JSON.parse(f.params);
      } catch (err) {
        throw new DistillError('E_USAGE', 'invalid --params', {
          expected: 'a JSON object',
          found: `${f.params} (${(err as Error).message})`,
        });
      }
    }
    const plot = await plotSchedule(this.args.schedule, {
      steps: f.steps,
      params,
      tokensPerStep: f['tokens-per-step'],
      ...(f.metrics ? { metricsFile: f.metrics } : {}),
    });
    if (f.svg) {
      writeFileAtomic(path.resolve(f.svg), renderPlotSvg(plot));
    }
    this.log(renderPlotText(plot, f.width));
    if (f.svg) this.log(`\nwrote ${f.svg}`);
    return plot;
  }
}
