// `distill report` on generated run directories: summary.json and report.md contents, tolerance of missing
// optional fields, loud errors for missing required files and malformed lines, and the CLI.
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { readRuns, renderReport, writeReport } from '../../src/eval/index.js';
import { distillAsync } from '../helpers/cli.js';
import { demoRuns, makeRunsRoot, writeRun } from './helpers/runs.js';

function fails(fn: () => unknown): DistillError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DistillError);
    expect((err as Error).message).not.toContain('\n');
    return err as DistillError;
  }
  throw new Error('expected a DistillError');
}

describe('distill report', () => {
  it('summary.json: teacher, every student with its held-out metrics, the best distilled student', async () => {
    const { root } = demoRuns();
    const out = path.join(root, 'report');
    const res = await writeReport([root], out);
    expect(readdirSync(out).sort()).toEqual(['report.html', 'report.md', 'summary.json']);
    const s = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(s.teacher).toEqual({ heldOutCE: 2.1, perplexity: Math.exp(2.1) });
    expect(s.cache).toEqual({ bytesPerPosition: 136 });
    expect(s.students.map((x: { name: string }) => x.name)).toEqual([
      'baseline',
      'medium-linear',
      'small-const',
      'small-h2s',
    ]);
    const base = s.students[0];
    expect(base).toMatchObject({
      name: 'baseline',
      baseline: true,
      heldOutCE: 2.9,
      agreement: 0.41,
      klToTeacher: 0.9,
      ece: 0.04,
      params: 32000,
      tokensPerSecond: 12000,
      steps: 40,
      finalHard: 1,
      finalSoft: 0,
    });
    expect(base.perplexity).toBeCloseTo(Math.exp(2.9), 12);
    expect(s.best.distilled).toBe('medium-linear');
    expect(s.best.baseline).toBe('baseline');
    expect(s.best.ceGainOverBaseline).toBeCloseTo(0.45, 12);
    expect(res.summary).toEqual(s);
    const md = readFileSync(path.join(out, 'report.md'), 'utf8');
    expect(md).toContain('| medium-linear | distilled | 48.0k | 2.4500 | 11.59 | 0.550 | 0.3500 | 0.0400 | 12.0k |');
    expect(md).toContain('| teacher (reference) | teacher |');
    expect(md).toContain('136.0 bytes per position');
    expect(md).toMatch(/beats the CE-only baseline \(baseline\) by 0\.4500 nats/);
  });

  it('the HTML is self-contained: inline SVG, no scripts, no external resources', () => {
    const { dirs } = demoRuns();
    const { html } = renderReport(readRuns(dirs));
    expect(html).not.toMatch(/<script|<link|<img|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    // Four metric bars, the reliability diagram, five training curves (hard CE, loss, agreement, soft loss, lr)
    // and one weights chart per student.
    expect((html.match(/<svg /g) ?? []).length).toBe(4 + 1 + 5 + 4);
    for (const name of ['baseline', 'medium-linear', 'small-const', 'small-h2s'])
      expect(html).toContain(`data-series="${name}"`);
    expect(html).toMatch(/class="ref" data-ref="teacher held-out CE 2\.100"/);
    expect(html).toContain('data-bar="small-h2s"');
  });

  it('tolerates missing optional fields and a truncated last metrics line', () => {
    const root = makeRunsRoot();
    const dir = writeRun(root, {
      name: 'sparse',
      heldOutCE: 3,
      evalExtra: {
        agreement: undefined,
        klToTeacher: null,
        ece: undefined,
        perplexity: undefined,
        params: undefined,
        tokensPerSecond: undefined,
        teacher: undefined,
        cache: undefined,
        baseline: undefined,
      },
    });
    appendFileSync(path.join(dir, 'metrics.jsonl'), '{"step": 41, "loss": 2.');
    const [run] = readRuns([dir]);
    expect(run!.skippedLines).toBe(1);
    expect(run!.metrics).toHaveLength(40);
    const { summary, markdown, html } = renderReport([run!]);
    const st = summary.students[0]!;
    expect(st).toMatchObject({ name: 'sparse', baseline: false, agreement: null, klToTeacher: null, ece: null });
    expect(st.perplexity).toBeCloseTo(Math.exp(3), 12);
    // params from config.json (ModelConfig), throughput from the training log.
    expect(st.params).toBeGreaterThan(0);
    expect(st.tokensPerSecond).toBeCloseTo(5000 + 19.5, 9);
    expect(summary.teacher).toBeNull();
    expect(summary.best).toEqual({ distilled: 'sparse', baseline: null, ceGainOverBaseline: null });
    expect(markdown).toContain('Teacher: not evaluated');
    expect(html).toContain('1 truncated metrics line left out');
  });

  it('is loud about missing required files and malformed content, naming the file', () => {
    const root = makeRunsRoot();
    const noEval = writeRun(root, { name: 'no-eval', heldOutCE: 3, omit: ['eval.json'] });
    expect(fails(() => readRuns([noEval])).message).toMatch(/run .*no-eval has no eval\.json.*distill eval/);
    const noMetrics = writeRun(root, { name: 'no-metrics', heldOutCE: 3, omit: ['metrics.jsonl'] });
    expect(fails(() => readRuns([noMetrics])).message).toMatch(/no-metrics has no metrics\.jsonl/);
    const badEval = writeRun(root, {
      name: 'bad-eval',
      heldOutCE: 3,
      evalExtra: { heldOutCE: 'low', agreement: 'high' },
    });
    const e = fails(() => readRuns([badEval]));
    expect(e.code).toBe('E_EVAL');
    expect(e.message).toMatch(/bad-eval.eval\.json is malformed.*heldOutCE.*agreement/);
    const midLine = writeRun(root, { name: 'mid-line', heldOutCE: 3 });
    const f = path.join(midLine, 'metrics.jsonl');
    const lines = readFileSync(f, 'utf8').split('\n');
    lines[3] = '{oops';
    writeFileSync(f, lines.join('\n'));
    expect(fails(() => readRuns([midLine])).message).toMatch(/metrics\.jsonl line 4 is not valid JSON/);
    const empty = path.join(root, 'empty');
    mkdirSync(empty);
    expect(fails(() => readRuns([empty])).message).toMatch(/empty is not a run directory/);
    expect(fails(() => readRuns([path.join(root, 'absent')])).code).toBe('E_NOT_FOUND');
  });

  it('duplicate student names across runs are told apart by their run folder', () => {
    const a = makeRunsRoot();
    const b = makeRunsRoot();
    writeRun(a, { name: 'small', heldOutCE: 2.5 });
    writeRun(b, { name: 'small', heldOutCE: 2.7 });
    const names = readRuns([a, b]).map((r) => r.name);
    expect(names).toEqual([`${path.basename(a)}/small`, `${path.basename(b)}/small`]);
  });

  it('CLI: writes the three files and prints the result with --json; a bad run exits 1 without a stack', async () => {
    const { root, dirs } = demoRuns();
    const out = path.join(root, 'cli-report');
    const res = await distillAsync(['report', ...dirs, '--out', out, '--json']);
    expect(res.status).toBe(0);
    const j = res.json();
    expect(j.files.html).toBe(path.join(out, 'report.html'));
    expect(j.summary.students).toHaveLength(4);
    expect(existsSync(path.join(out, 'report.md'))).toBe(true);
    const bad = await distillAsync(['report', path.join(root, 'nope'), '--out', path.join(root, 'bad-report')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/\[E_NOT_FOUND\] run directory .*nope not found/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(path.join(root, 'bad-report'))).toBe(false);
  });
});
