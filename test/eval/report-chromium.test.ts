// Renders report.html in headless Chromium (Debian's `chromium`), takes a screenshot, decodes the PNG and
// checks the charts were drawn: each student's series colour, the teacher's reference line, and SVG paths in
// the parsed DOM. Skips with a message only when no chromium binary exists.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PALETTE } from '../../src/charts/index.js';
import { writeReport } from '../../src/eval/index.js';
import { demoRuns } from './helpers/runs.js';
import { countColor, decodePng } from './helpers/png.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!CHROMIUM) console.warn("report-chromium: skipped, no chromium binary (install Debian's `chromium` package)");

function chromium(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'distill-chromium-'));
  const base = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
  ];
  return new Promise((resolve) => {
    execFile(
      CHROMIUM!,
      [...base, ...args],
      { timeout: 150_000, maxBuffer: 64 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

describe.skipIf(!CHROMIUM)('report.html in headless Chromium', () => {
  it('draws every chart: series colours, the teacher line, SVG paths in the DOM', async () => {
    const { root, dirs } = demoRuns();
    const out = path.join(root, 'report');
    await writeReport(dirs, out);
    const url = `file://${path.join(out, 'report.html')}`;
    const png = path.join(root, 'shot.png');
    const shot = await chromium([`--screenshot=${png}`, '--window-size=1280,2600', '--hide-scrollbars', url]);
    expect(existsSync(png), shot.stderr).toBe(true);
    const img = decodePng(readFileSync(png));
    expect(img.width).toBe(1280);
    // Each student's colour (PALETTE order = run order) appears both in the bar charts (top) and in the
    // line charts below them.
    const split = Math.floor(img.height * 0.42);
    for (let i = 0; i < dirs.length; i++) {
      expect(countColor(img, PALETTE[i]!, 10, 0, split), `bars of ${dirs[i]}`).toBeGreaterThan(2000);
      expect(countColor(img, PALETTE[i]!, 10, split), `lines of ${dirs[i]}`).toBeGreaterThan(300);
    }
    // The teacher reference line (#111111, dashed).
    expect(countColor(img, '#111111', 6)).toBeGreaterThan(200);
    // Not a blank page.
    expect(countColor(img, '#ffffff', 2)).toBeLessThan(0.95 * img.width * img.height);

    const dom = await chromium(['--dump-dom', url]);
    expect(dom.code).toBe(0);
    const paths = dom.stdout.match(/<path class="series" data-series="[^"]+" d="M[^"]+"/g) ?? [];
    const curves = paths.filter((p) => !/data-series="(perfectly calibrated|[^"]+ \(ECE [^"]+\))"/.test(p));
    // Training curves (hard CE, loss, lr for four students; agreement and soft loss for the three distilled),
    // hard and soft on each student's weights chart; the reliability diagram's diagonal and one line per student.
    expect(curves.length).toBe(4 * 3 + 3 * 2 + 4 * 2);
    expect(paths.length - curves.length).toBe(1 + 4);
    for (const p of curves) expect((p.match(/L/g) ?? []).length).toBeGreaterThanOrEqual(39);
    // Raw training values are drawn faintly behind every smoothed curve.
    expect((dom.stdout.match(/<path class="raw"[^>]*stroke-opacity="0.25"/g) ?? []).length).toBe(4 * 2 + 3 * 2);
    expect((dom.stdout.match(/<rect class="bar"/g) ?? []).length).toBe(16);
  });
});
