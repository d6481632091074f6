// `distill report <run dir…> --out <dir>`: report.html (self-contained, inline SVG), report.md and
// summary.json comparing the students of one or more runs against the teacher.
import { Args, Flags } from '@oclif/core';
import { writeReport, type ReportResult } from '../../src/eval/index.js';
import { fmtNum, verdict } from '../../src/eval/report/summary.js';
import { BaseCommand } from '../base.js';

export default class Report extends BaseCommand<typeof Report> {
  static override description = 'Write an HTML/Markdown/JSON report comparing trained and evaluated students';
  static override strict = false;
  static override examples = [
    '<%= config.bin %> report runs/kd runs/baseline --out report',
    '<%= config.bin %> report runs/kd/small runs/kd/large --out report --json',
    '<%= config.bin %> report runs/kd --out report --samples-data val.arrow --samples-teacher teacher/model.onnx',
  ];

  static override args = {
    runs: Args.string({
      description: 'run directories (each with eval.json and metrics.jsonl, or a folder of them)',
      required: true,
    }),
  };

  static override flags = {
    out: Flags.string({ description: 'folder for report.html, report.md and summary.json', required: true }),
    title: Flags.string({ description: 'page title', default: 'Distillery report' }),
    'allow-mixed': Flags.boolean({
      description: 'compare runs scored on different held-out data or teachers anyway (the report says so)',
      default: false,
      allowNo: true,
    }),
    'samples-data': Flags.string({
      description: 'held-out token dataset: add sample completions of its first sequences by every student',
    }),
    'samples-teacher': Flags.string({
      description: 'the teacher ONNX file, to add its completions beside the students’',
      dependsOn: ['samples-data'],
    }),
    'sample-rows': Flags.integer({ description: 'prompts in the sample completions', default: 3, min: 1 }),
    'sample-tokens': Flags.integer({ description: 'tokens each model completes per prompt', default: 32, min: 1 }),
  };

  async run(): Promise<ReportResult> {
    const { argv } = await this.parse(Report);
    const res = await writeReport(argv as string[], this.flags.out, {
      title: this.flags.title,
      allowMixed: this.flags['allow-mixed'],
      ...(this.flags['samples-data']
        ? {
            samples: {
              data: this.flags['samples-data'],
              ...(this.flags['samples-teacher'] ? { teacher: this.flags['samples-teacher'] } : {}),
              rows: this.flags['sample-rows'],
              newTokens: this.flags['sample-tokens'],
            },
          }
        : {}),
      progress: this.progress(),
    });
    for (const s of res.summary.students) {
      this.log(
        `${s.name.padEnd(24)} ${s.baseline ? 'baseline ' : 'distilled'}  held-out CE ${fmtNum(s.heldOutCE)}  agreement ${fmtNum(s.agreement, 3)}`,
      );
    }
    if (res.summary.teacher)
      this.log(`${'teacher'.padEnd(24)} reference  held-out CE ${fmtNum(res.summary.teacher.heldOutCE)}`);
    this.log(verdict(res.summary));
    this.log(`wrote ${res.files.html}, ${res.files.markdown}, ${res.files.summary}`);
    return res;
  }
}
