// `distill demo`: prepare → teacher cache → distilled students (three dense; a small MoE one too with the MoE
// teacher) + a CE-only baseline → held-out eval → report, on the corpus and a teacher shipped in fixtures/;
// prints the result table (total and active parameters) and where the report is.
import { Flags } from '@oclif/core';
import { runDemo, type DemoResult } from '../../src/demo/index.js';
import { fmtNum } from '../../src/eval/report/summary.js';
import { BaseCommand, DistillError } from '../base.js';

export default class Demo extends BaseCommand<typeof Demo> {
  static override description =
    'Run the whole distillation pipeline on the embedded corpus and teacher, and report whether distillation beats the CE-only baseline';
  static override examples = [
    '<%= config.bin %> demo --out distill-demo',
    '<%= config.bin %> demo --out /tmp/demo --budget small --json',
    '<%= config.bin %> demo --out distill-demo-dense --teacher dense',
  ];

  static override flags = {
    out: Flags.string({ description: 'output folder (data/, cache/, runs/, report/)', default: 'distill-demo' }),
    budget: Flags.string({
      description:
        'full: the whole corpus (about 1.5 minutes on 2 cores, docs/demo.md); small: two short books and a few steps (seconds)',
      options: ['full', 'small'],
      default: 'full',
    }),
    force: Flags.boolean({ description: 'replace a previous demo in --out', default: false, allowNo: true }),
    teacher: Flags.string({
      description:
        'moe: the mixture-of-experts fixtures/teacher-moe, with a small MoE student beside three dense ones; dense: fixtures/teacher and the original demo',
      options: ['moe', 'dense'],
      default: 'moe',
    }),
  };

  async run(): Promise<DemoResult> {
    const f = this.flags;
    const signal = this.interruptSignal();
    const res = await runDemo({
      out: f.out,
      budget: f.budget as 'full' | 'small',
      force: f.force,
      teacher: f.teacher as 'dense' | 'moe',
      progress: this.progress(),
      signal,
    }).catch((err: unknown) => {
      // The demo says what it kept and how to resume; the line names the signal like every interrupted command.
      if (err instanceof DistillError && err.code === 'E_INTERRUPTED')
        throw this.interrupted(err.summary, err.details.hint ?? '');
      throw err;
    });
    this.log('');
    this.log(
      `${'student'.padEnd(22)} ${'kind'.padEnd(26)} ${'params'.padStart(8)} ${'active'.padStart(8)} ${'held-out CE'.padStart(11)} ${'ppl'.padStart(7)} ${'agree'.padStart(6)} ${'KL'.padStart(7)}`,
    );
    for (const s of res.students) {
      const kind = s.baseline ? 'CE-only baseline' : `distilled, ${s.schedule}`;
      this.log(
        `${s.name.padEnd(22)} ${kind.padEnd(26)} ${String(s.params).padStart(8)} ${String(s.activeParams).padStart(8)} ${fmtNum(s.heldOutCE).padStart(11)} ${fmtNum(s.perplexity, 2).padStart(7)} ${fmtNum(s.agreement, 3).padStart(6)} ${fmtNum(s.klToTeacher).padStart(7)}`,
      );
    }
    this.log(
      `${'teacher'.padEnd(22)} ${`reference, ${res.teacher.kind}`.padEnd(26)} ${String(res.teacher.params ?? '').padStart(8)} ${String(res.teacher.activeParams ?? '').padStart(8)} ${fmtNum(res.teacher.heldOutCE).padStart(11)} ${fmtNum(res.teacher.perplexity, 2).padStart(7)}`,
    );
    const b = res.best;
    const pm = `${Math.abs(b.ceGainOverBaseline).toFixed(4)}${b.ceGainStdErr !== null ? ` ± ${b.ceGainStdErr.toFixed(4)}` : ''} nats/token of held-out cross-entropy (± one standard error over held-out sequences)`;
    this.log(
      b.verdict === 'distillation'
        ? `distillation wins: ${b.distilled} beats ${b.baseline} by ${pm}`
        : b.verdict === 'baseline'
          ? `distillation did NOT win: ${b.baseline} beats ${b.distilled} by ${pm}`
          : `no clear difference: ${b.distilled} and ${b.baseline} differ by ${pm}, inside ±2 standard errors`,
    );
    this.log(
      `${res.budget} budget, ${res.seconds.toFixed(0)} s; report: ${res.report.html} (also ${res.report.markdown}, ${res.report.summary})`,
    );
    return res;
  }
}
