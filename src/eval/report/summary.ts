// The report's data model (summary.json) from the runs read by read.ts, and the Markdown tables
// (report.md) that the HTML page repeats.
import { expertsLabel, moeSummary, moeTable, type MoeSummary } from './moe.js';
import type { RunData } from './read.js';

export interface StudentSummary {
  name: string;
  baseline: boolean;
  heldOutCE: number | null;
  perplexity: number | null;
  agreement: number | null;
  klToTeacher: number | null;
  ece: number | null;
  params: number | null;
  /** Parameters one token uses (params for a dense model). */
  activeParams: number | null;
  tokensPerSecond: number | null;
  /** Optimizer steps logged, and the last logged hard/soft weights. */
  steps: number;
  finalHard: number | null;
  finalSoft: number | null;
  model?: { dModel: number; nLayers: number; nHeads: number; nKvHeads: number; ffnDim: number; vocabSize: number };
  /** Mixture-of-experts students: the experts and each MoE layer's routing. */
  moe?: MoeSummary;
}

export interface ReportSummary {
  teacher: { heldOutCE: number; perplexity: number; params?: number; activeParams?: number } | null;
  cache: { bytesPerPosition: number } | null;
  students: StudentSummary[];
  /** The distilled student with the lowest held-out CE, and its gain over the best baseline (nats). */
  best: { distilled: string; baseline: string | null; ceGainOverBaseline: number | null } | null;
}

/** JSON has no NaN/Infinity: those become null. */
const fin = (v: number | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function buildSummary(runs: RunData[]): ReportSummary {
  const teacherRun = runs.find((r) => r.eval.teacher);
  const cacheRun = runs.find((r) => r.eval.cache && Number.isFinite(r.eval.cache.bytesPerPosition));
  const students: StudentSummary[] = runs.map((r) => {
    const e = r.eval;
    const last = r.metrics[r.metrics.length - 1];
    const s: StudentSummary = {
      name: r.name,
      baseline: e.baseline,
      heldOutCE: fin(e.heldOutCE),
      perplexity: fin(e.perplexity),
      agreement: fin(e.agreement),
      klToTeacher: fin(e.klToTeacher),
      ece: fin(e.ece),
      params: fin(e.params),
      activeParams: fin(e.activeParams),
      tokensPerSecond: fin(e.tokensPerSecond),
      steps: r.metrics.length,
      finalHard: fin(last?.hard),
      finalSoft: fin(last?.soft),
    };
    if (r.config) {
      const c = r.config;
      s.model = {
        dModel: c.dModel,
        nLayers: c.nLayers,
        nHeads: c.nHeads,
        nKvHeads: c.nKvHeads,
        ffnDim: c.ffnDim,
        vocabSize: c.vocabSize,
      };
    }
    const moe = moeSummary(r);
    if (moe) s.moe = moe;
    return s;
  });
  const byCE = (a: StudentSummary, b: StudentSummary) => (a.heldOutCE ?? Infinity) - (b.heldOutCE ?? Infinity);
  const distilled = students.filter((s) => !s.baseline && s.heldOutCE !== null).sort(byCE)[0];
  const baseline = students.filter((s) => s.baseline && s.heldOutCE !== null).sort(byCE)[0];
  return {
    teacher: teacherRun
      ? {
          heldOutCE: teacherRun.eval.teacher!.heldOutCE,
          perplexity: teacherRun.eval.teacher!.perplexity,
          ...(teacherRun.eval.teacher!.params !== undefined ? { params: teacherRun.eval.teacher!.params } : {}),
          ...(teacherRun.eval.teacher!.activeParams !== undefined
            ? { activeParams: teacherRun.eval.teacher!.activeParams }
            : {}),
        }
      : null,
    cache: cacheRun ? { bytesPerPosition: cacheRun.eval.cache!.bytesPerPosition } : null,
    students,
    best: distilled
      ? {
          distilled: distilled.name,
          baseline: baseline?.name ?? null,
          ceGainOverBaseline: baseline ? baseline.heldOutCE! - distilled.heldOutCE! : null,
        }
      : null,
  };
}

export function fmtNum(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return v.toFixed(digits);
}

export function fmtCount(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)}B`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return String(Math.round(v));
}

/** Rows of the held-out table as plain strings: shared by Markdown and HTML so both show the same numbers. */
export function metricsTable(s: ReportSummary): { header: string[]; rows: string[][] } {
  const header = [
    'student',
    'kind',
    'params',
    'held-out CE',
    'perplexity',
    'agreement',
    'KL to teacher',
    'ECE',
    'tokens/s',
  ];
  const rows = s.students.map((st) => [
    st.name,
    st.baseline ? 'CE-only baseline' : 'distilled',
    fmtCount(st.params),
    fmtNum(st.heldOutCE),
    fmtNum(st.perplexity, 2),
    fmtNum(st.agreement, 3),
    fmtNum(st.klToTeacher),
    fmtNum(st.ece, 4),
    fmtCount(st.tokensPerSecond),
  ]);
  if (s.teacher)
    rows.push([
      'teacher (reference)',
      'teacher',
      fmtCount(s.teacher.params),
      fmtNum(s.teacher.heldOutCE),
      fmtNum(s.teacher.perplexity, 2),
      '—',
      '—',
      '—',
      '—',
    ]);
  return { header, rows };
}

export function modelTable(s: ReportSummary): { header: string[]; rows: string[][] } {
  const header = [
    'student',
    'params',
    'active params',
    'd_model',
    'layers',
    'heads (kv)',
    'ffn',
    'experts',
    'vocab',
    'steps',
    'final hard / soft',
  ];
  const rows = s.students.map((st) => [
    st.name,
    fmtCount(st.params),
    fmtCount(st.activeParams),
    st.model ? String(st.model.dModel) : '—',
    st.model ? String(st.model.nLayers) : '—',
    st.model ? `${st.model.nHeads} (${st.model.nKvHeads})` : '—',
    st.model ? String(st.model.ffnDim) : '—',
    expertsLabel(st.moe),
    st.model ? String(st.model.vocabSize) : '—',
    String(st.steps),
    `${fmtNum(st.finalHard, 3)} / ${fmtNum(st.finalSoft, 3)}`,
  ]);
  if (s.teacher?.params !== undefined) {
    const t = [fmtCount(s.teacher.params), fmtCount(s.teacher.activeParams)];
    rows.push(['teacher (reference)', ...t, ...new Array<string>(header.length - 3).fill('—')]);
  }
  return { header, rows };
}

export function verdict(s: ReportSummary): string {
  if (!s.best) return 'No distilled student with a held-out cross-entropy.';
  if (s.best.baseline === null || s.best.ceGainOverBaseline === null)
    return `Best distilled student: ${s.best.distilled} (no CE-only baseline to compare with).`;
  const g = s.best.ceGainOverBaseline;
  return g > 0
    ? `Best distilled student ${s.best.distilled} beats the CE-only baseline (${s.best.baseline}) by ${g.toFixed(4)} nats of held-out cross-entropy.`
    : `The CE-only baseline (${s.best.baseline}) is not beaten: the best distilled student ${s.best.distilled} is ${(-g).toFixed(4)} nats worse on held-out cross-entropy.`;
}

function mdTable(t: { header: string[]; rows: string[][] }): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [
    `| ${t.header.map(esc).join(' | ')} |`,
    `|${t.header.map(() => '---').join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

export function renderMarkdown(s: ReportSummary, title = 'Distillery report'): string {
  const parts = [
    `# ${title}`,
    '',
    verdict(s),
    '',
    '## Held-out metrics',
    '',
    mdTable(metricsTable(s)),
    '',
    '## Models',
    '',
    mdTable(modelTable(s)),
    '',
  ];
  if (s.students.some((st) => st.moe)) parts.push('## Mixture of experts', '', mdTable(moeTable(s.students)), '');
  parts.push('## Teacher and cache', '');
  parts.push(
    s.teacher
      ? `- Teacher held-out CE ${fmtNum(s.teacher.heldOutCE)} nats (perplexity ${fmtNum(s.teacher.perplexity, 2)})`
      : '- Teacher: not evaluated',
  );
  parts.push(
    s.cache
      ? `- Logit cache: ${fmtNum(s.cache.bytesPerPosition, 1)} bytes per position`
      : '- Logit cache: size not recorded',
  );
  parts.push(
    '',
    "CE and KL are in nats per token; agreement is the student's top-1 against the teacher's; ECE uses 15 equal-width confidence bins.",
    '',
  );
  return parts.join('\n');
}
