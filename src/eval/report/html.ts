// report.html: one self-contained page (inline CSS and server-drawn SVG, no scripts, no network) comparing
// runs: the verdict with its uncertainty, held-out metrics and the reliability diagram, training curves (smoothed
// over faint raw ones; agreement, soft loss, learning rate), hard/soft weights, run settings, model sizes.
import { barChartSvg, escapeXml, lineChartSvg, paletteColor, type RefLine } from '../../charts/index.js';
import type { SampleCompletions } from './samples.js';
import { expertLoadCharts, moeTable } from './moe.js';
import { mixedNote, reliabilityDiagram, settingsTable, trainingCharts } from './training.js';
import type { RunData } from './read.js';
import { fmtNum, metricsTable, modelTable, verdict, type ReportSummary } from './summary.js';

const TEACHER_COLOR = '#111111';

function table(t: { header: string[]; rows: string[][] }, cls = ''): string {
  const th = t.header.map((h) => `<th>${escapeXml(h)}</th>`).join('');
  const rows = t.rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${escapeXml(c)}</th>` : `<td>${escapeXml(c)}</td>`)).join('')}</tr>`,
    )
    .join('\n');
  return `<table class="${cls}"><thead><tr>${th}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

/** One colour per run, stable across every chart on the page. */
export function runColors(runs: RunData[]): Map<string, string> {
  return new Map(runs.map((r, i) => [r.name, paletteColor(i)]));
}

type ColorOf = (name: string) => string;

/** One student's hard/soft weights over steps (and its temperature when the schedule changes it). */
function weightChart(r: RunData, color: string): string {
  // A log without temperatures (older runs) reads them as NaN: such rows draw no temperature.
  const temps = r.metrics.filter((m) => Number.isFinite(m.temperature));
  const distinctT = new Set(temps.map((m) => m.temperature)).size > 1;
  return lineChartSvg({
    title: `${r.name}: hard / soft weights${distinctT ? ' (and temperature)' : ''}`,
    xLabel: 'optimizer step',
    yLabel: 'weight',
    width: 490,
    height: 260,
    // Beside the plot: inside it the key would sit on a weight held near 1.
    legend: 'right',
    yMin: 0,
    yMax: Math.max(
      1,
      ...r.metrics.map((m) => Math.max(m.hard, m.soft)).filter(Number.isFinite),
      ...(distinctT ? temps.map((m) => m.temperature) : []),
    ),
    series: [
      { name: 'hard', color, points: r.metrics.map((m) => [m.step, m.hard]) },
      { name: 'soft', color, dash: '6 3', points: r.metrics.map((m) => [m.step, m.soft]) },
      ...(distinctT
        ? [
            {
              name: 'temperature',
              color: '#7f7f7f',
              dash: '2 3',
              points: temps.map((m): [number, number] => [m.step, m.temperature]),
            },
          ]
        : []),
    ],
  });
}

/** The held-out metrics as bar charts, one bar per student. */
function metricBars(s: ReportSummary, colorOf: ColorOf, teacherRef: RefLine[]): string[] {
  const bars = (pick: (st: ReportSummary['students'][number]) => number | null) =>
    s.students.map((st) => ({ label: st.name, value: pick(st) ?? NaN, color: colorOf(st.name) }));
  return [
    barChartSvg({
      title: 'Held-out cross-entropy (lower is better)',
      bars: bars((st) => st.heldOutCE),
      refLines: teacherRef,
      yLabel: 'nats',
      width: 440,
      height: 300,
    }),
    barChartSvg({
      title: 'Top-1 agreement with the teacher',
      bars: bars((st) => st.agreement),
      yLabel: 'fraction',
      width: 440,
      height: 300,
    }),
    barChartSvg({
      title: 'KL to the teacher on its support',
      bars: bars((st) => st.klToTeacher),
      yLabel: 'nats',
      width: 440,
      height: 300,
    }),
    barChartSvg({ title: 'Expected calibration error (15 bins)', bars: bars((st) => st.ece), width: 440, height: 300 }),
  ];
}

/** The sample completions section: each prompt with the teacher's and every student's greedy completion. */
function samplesSection(c: SampleCompletions | undefined): string {
  if (!c) return '';
  const header = ['prompt', ...(c.teacherMethod ? ['teacher'] : []), ...c.students];
  const rows = c.rows.map((r) => [r.prompt, ...(c.teacherMethod ? [r.teacher ?? ''] : []), ...r.students]);
  const how = `The first ${c.promptTokens} tokens of held-out sequences, then ${c.newTokens} tokens decoded greedily by each model (students: the native engine with its KV cache${c.teacherMethod ? `; teacher: ${c.teacherMethod}` : ''}).`;
  return `<h2>Sample completions</h2>\n<p>${escapeXml(how)}</p>\n${table({ header, rows }, 'samples')}`;
}

export function renderHtml(
  s: ReportSummary,
  runs: RunData[],
  title = 'Distillery report',
  samples?: SampleCompletions,
): string {
  const colors = runColors(runs);
  const colorOf: ColorOf = (name) => colors.get(name) ?? TEACHER_COLOR;
  const teacherRef: RefLine[] = s.teacher
    ? [{ y: s.teacher.heldOutCE, label: `teacher held-out CE ${fmtNum(s.teacher.heldOutCE, 3)}`, color: TEACHER_COLOR }]
    : [];
  const charts = trainingCharts(runs, colorOf, teacherRef);
  const weightCharts = runs.map((r) => weightChart(r, colorOf(r.name)));
  const bars = metricBars(s, colorOf, teacherRef);
  const loadCharts = runs.flatMap((r) => expertLoadCharts(r));
  const moeSection = loadCharts.length
    ? `<h2>Mixture of experts: expert load</h2>\n${table(moeTable(s.students), 'moe')}\n<div class="charts">\n${loadCharts.join('\n')}\n</div>`
    : '';
  const notes = runs
    .filter((r) => r.skippedLines > 0)
    .map((r) => `<li>${escapeXml(r.name)}: ${r.skippedLines} truncated metrics line left out</li>`);
  if (s.unrecorded?.length)
    notes.push(
      `<li>${escapeXml(s.unrecorded.join(', '))}: eval.json does not record the held-out data or teacher it was scored on (written by an older <code>distill eval</code>), so the report cannot check that these runs compare</li>`,
    );
  const mixed = s.mixed ? mixedNote([...s.mixed.heldOut, ...s.mixed.teachers]) : '';
  const teacherLine = s.teacher
    ? `Teacher held-out CE <b>${fmtNum(s.teacher.heldOutCE)}</b> nats (perplexity ${fmtNum(s.teacher.perplexity, 2)}).`
    : 'The teacher was not evaluated.';
  const cacheLine = s.cache
    ? `Logit cache: <b>${fmtNum(s.cache.bytesPerPosition, 1)}</b> bytes per position.`
    : 'Logit cache size not recorded.';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fff; max-width: 1100px; }
h1 { font-size: 26px; margin: 0 0 8px; } h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.verdict { font-size: 16px; background: #f3f6fa; padding: 10px 14px; border-left: 4px solid #1f77b4; }
p.warning { background: #fff4e5; padding: 10px 14px; border-left: 4px solid #ff7f0e; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; } thead th { background: #f0f0f0; text-align: center; }
tbody th { text-align: left; font-weight: 600; }
.charts svg { display: block; margin: 10px 0; max-width: 100%; height: auto; }
.bars { display: flex; flex-wrap: wrap; gap: 8px; } .bars svg { margin: 4px 0; }
footer { color: #666; font-size: 12px; margin-top: 32px; }
table.samples td, table.samples tbody th { text-align: left; white-space: pre-wrap; font-family: ui-monospace, monospace; font-weight: normal; vertical-align: top; }
</style>
</head>
<body>
<h1>${escapeXml(title)}</h1>
<p class="verdict">${escapeXml(verdict(s))}</p>
${mixed}
<h2>Held-out metrics</h2>
${table(metricsTable(s), 'metrics')}
<p>${teacherLine} ${cacheLine}</p>
<div class="bars">
${bars.join('\n')}
</div>
<div class="charts">
${reliabilityDiagram(runs, colorOf)}
</div>
<h2>Training curves</h2>
<div class="charts">
${charts.join('\n')}
</div>
<h2>Hard / soft weights over steps</h2>
<div class="bars">
${weightCharts.join('\n')}
</div>
<h2>Run settings</h2>
${table(settingsTable(runs), 'settings')}
<h2>Models</h2>
${table(modelTable(s), 'models')}
${moeSection}
${samplesSection(samples)}
${notes.length ? `<h2>Notes</h2><ul>${notes.join('')}</ul>` : ''}
<footer>CE and KL in nats per token. Agreement: the student's top-1 against the teacher's. KL: teacher ‖ student, both renormalized to the teacher's cached top-k. ECE: 15 equal-width confidence bins. Runs: ${runs.map((r) => escapeXml(r.dir)).join(', ')}.</footer>
</body>
</html>
`;
}
