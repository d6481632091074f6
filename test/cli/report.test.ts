// Reports that do not mislead: runs scored on different held-out data or teachers are refused unless
// --allow-mixed (then the page says so); the verdict carries its standard error and says "no clear difference"
// inside the noise; the page has the reliability diagram, the learning rate, agreement and soft loss over
// training, smoothed curves over faint raw ones and the run settings; and in headless Chromium no two labels of
// a chart overlap (geometry measured by the browser itself).
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSummary, readRuns, renderReport } from '../../src/eval/report/index.js';
import { verdict } from '../../src/eval/report/summary.js';
import { makeRunsRoot, writeRun } from '../eval/helpers/runs.js';
import { buildFixture, fixturePaths } from './fixture.js';
import { distillInProcess } from './in-process.js';

const P = fixturePaths('report');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** Two students scored on the same held-out sequences: per-sequence NLL sums, `delta` nats/token apart. */
function pairedRuns(delta: number, noise: number) {
  const root = makeRunsRoot();
  const S = 40;
  const T = 100;
  const base = Array.from({ length: S }, (_, s) => T * (2.5 + 0.3 * Math.sin(s)));
  // Each run has its own noise per sequence (what the difference keeps after the shared part cancels).
  const rec = (name: string, shift: number, baseline: boolean) => {
    const phase = baseline ? 1.3 : 0;
    const nll = base.map((x, s) => x + T * (shift + noise * Math.cos(3 * s + phase)));
    const ce = nll.reduce((a, b) => a + b, 0) / (S * T);
    return writeRun(root, {
      name,
      baseline,
      heldOutCE: ce,
      evalExtra: {
        heldOut: { sha256: 'a'.repeat(64), sequences: S, seqLen: T + 1 },
        reference: { name: 'teacher.onnx', sha256: 'b'.repeat(64), source: 'model' },
        heldOutCEStdErr: 0.05,
        sequenceSums: { nll, positions: Array.from({ length: S }, () => T) },
      },
    });
  };
  return [rec('kd', 0, false), rec('ce', delta, true)];
}

describe('reports that do not mislead', () => {
  beforeAll(() => buildFixture(P));

  it('refuses runs scored on different held-out data or teachers unless --allow-mixed, and then says so', async () => {
    // A second evaluation of the same student on the training split, against the same teacher.
    const other = path.join(P.dir, 'other-run', 'kid');
    cpSync(P.ckpt, other, { recursive: true });
    const ev = await distillInProcess([
      'eval',
      '--checkpoint',
      other,
      '--data',
      P.data,
      '--teacher',
      P.teacher,
      '--force',
    ]);
    expect(ev.status, ev.stderr).toBe(0);
    const out = path.join(P.dir, 'mixed-report');
    const refused = await distillInProcess(['report', P.ckpt, other, '--out', out]);
    expect(refused.status).toBe(1);
    expect(refused.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(
      /^Error: \[E_USAGE\] the runs were scored on different held-out data, so one verdict would compare unlike numbers: got run\/kid on held-out data \w{12}…; other-run\/kid on held-out data \w{12}…\..* or pass --allow-mixed to report them together anyway/,
    );
    expect(existsSync(path.join(out, 'report.html'))).toBe(false);
    const allowed = await distillInProcess(['report', P.ckpt, other, '--out', out, '--allow-mixed', '--json']);
    expect(allowed.status, allowed.stderr).toBe(0);
    expect(allowed.json().summary.mixed.heldOut).toHaveLength(2);
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toMatch(/<p class="warning"><b>Mixed comparison:<\/b> run\/kid on held-out data/);
    expect(readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(
      /Caution: these runs were scored on different held-out data/,
    );
  });

  it('eval.json records the dataset hash and the teacher, which the settings table shows', async () => {
    const ev = JSON.parse(readFileSync(path.join(P.ckpt, 'eval.json'), 'utf8'));
    const [run] = readRuns([P.ckpt]);
    const { html } = renderReport([run!]);
    expect(html).toContain(`${ev.heldOut.sha256.slice(0, 12)}…`);
    expect(html).toContain(`model.onnx ${ev.reference.sha256.slice(0, 12)}…`);
    // From trainer-state.json: lr (min, warmup), batch × accumulation, steps, seed; a CE-only run has no loss.
    expect(html).toMatch(/<td>0\.001 \(0\.0001, 0\)<\/td><td>2 × 1<\/td><td>1<\/td><td>1<\/td><td>ce only<\/td>/);
  });

  it('gives a verdict only outside the noise, with its paired standard error', () => {
    const clear = buildSummary(readRuns(pairedRuns(0.05, 0.01)));
    expect(clear.best).toMatchObject({ distilled: 'kd', baseline: 'ce', paired: true, verdict: 'distillation' });
    expect(clear.best?.ceGainOverBaseline).toBeCloseTo(0.05, 3);
    // Paired: the per-sequence differences only carry the small noise, far below the 0.05 of each run alone.
    expect(clear.best?.ceGainStdErr).toBeGreaterThan(0);
    expect(clear.best?.ceGainStdErr).toBeLessThan(0.01);
    expect(verdict(clear)).toMatch(
      /^Distillation wins: the best distilled student kd beats the CE-only baseline \(ce\) by 0\.0500 ± 0\.00\d\d nats of held-out cross-entropy \(one standard error over held-out sequences, paired\)\.$/,
    );
    const noisy = buildSummary(readRuns(pairedRuns(0.002, 0.2)));
    expect(noisy.best?.verdict).toBe('no clear difference');
    expect(verdict(noisy)).toMatch(
      /^No clear difference: the best distilled student kd and the CE-only baseline \(ce\) differ by 0\.00\d\d ± 0\.0\d{3} nats .*paired\), inside ±2 standard errors\.$/,
    );
  });

  it('the page: reliability diagram from the 15 bins, lr, agreement and soft loss, smoothed over faint raw curves', () => {
    const [run] = readRuns([P.ckpt]);
    const { html } = renderReport([run!]);
    expect(html).toContain('Reliability diagram: held-out accuracy against confidence (15 bins)');
    const bins = JSON.parse(readFileSync(path.join(P.ckpt, 'eval.json'), 'utf8')).calibration.filter(
      (b: { count: number }) => b.count > 0,
    ).length;
    const diagram = html.slice(html.indexOf('Reliability diagram'));
    expect((diagram.slice(0, diagram.indexOf('</svg>')).match(/<circle /g) ?? []).length).toBe(bins);
    for (const title of ['Learning rate', 'Top-1 agreement with the teacher over training', 'Soft loss over training'])
      expect(html).toContain(title);
    expect(html).toMatch(/<path class="raw" data-series="kid \(raw\)"[^>]*stroke-opacity="0\.25"/);
  });

  it.skipIf(!CHROMIUM)(
    'in headless Chromium, no two labels of a chart overlap and legends stay inside',
    async () => {
      const root = makeRunsRoot();
      const names = [
        'medium-hard-to-soft-with-a-long-name',
        'small-constant-schedule-student',
        'tiny-linear',
        'baseline-of-the-same-shape',
      ];
      const dirs = names.map((name, i) => writeRun(root, { name, heldOutCE: 2.4 + 0.1 * i, baseline: i === 3 }));
      const { html } = renderReport(readRuns(dirs));
      // The page has no scripts; this copy measures what the browser drew and prints it into the DOM.
      // Each text's drawn box is its SVG bounding box through its transform (rotation included): a quad in page
      // coordinates. Two quads overlap when no edge direction separates them (the separating axis test).
      const probe = `<script>
      const quad = (t) => {
        const b = t.getBBox();
        const m = t.getScreenCTM();
        return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]].map(
          ([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f],
        );
      };
      const separated = (p, q) => {
        for (const poly of [p, q])
          for (let i = 0; i < 4; i++) {
            const [x1, y1] = poly[i], [x2, y2] = poly[(i + 1) % 4];
            const nx = y2 - y1, ny = x1 - x2;
            const pr = (v) => v.map(([x, y]) => x * nx + y * ny);
            const a = pr(p), b = pr(q);
            if (Math.max(...a) <= Math.min(...b) + 0.5 || Math.max(...b) <= Math.min(...a) + 0.5) return true;
          }
        return false;
      };
      const out = [];
      for (const svg of document.querySelectorAll('svg')) {
        const box = svg.getBoundingClientRect();
        const texts = [...svg.querySelectorAll('text')].map((t) => ({ s: t.lastChild.textContent, q: quad(t) }));
        for (let i = 0; i < texts.length; i++) {
          const a = texts[i];
          if (a.q.some(([x, y]) => x < box.left - 1 || x > box.right + 1 || y < box.top - 1 || y > box.bottom + 1))
            out.push('outside: ' + a.s);
          for (let j = i + 1; j < texts.length; j++) if (!separated(a.q, texts[j].q)) out.push(a.s + ' / ' + texts[j].s);
        }
      }
      document.body.insertAdjacentHTML('beforeend', '<pre id="overlaps">' + JSON.stringify(out) + '</pre>');
    </script></body>`;
      const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'distill-probe-')), 'probe.html');
      writeFileSync(file, html.replace('</body>', probe));
      const dom = await new Promise<string>((resolve) =>
        execFile(
          CHROMIUM ?? 'chromium',
          [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            `--user-data-dir=${path.dirname(file)}/profile`,
            '--dump-dom',
            `file://${file}`,
          ],
          { timeout: 120_000, maxBuffer: 64 << 20 },
          (_err, stdout) => resolve(String(stdout)),
        ),
      );
      const m = /<pre id="overlaps">(\[.*?\])<\/pre>/.exec(dom);
      expect(m, 'the probe ran').not.toBeNull();
      expect(JSON.parse((m?.[1] ?? '[]').replace(/&quot;/g, '"'))).toEqual([]);
    },
    150_000,
  );
});
