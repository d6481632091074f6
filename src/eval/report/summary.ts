// The report's data model (summary.json) from the runs read by read.ts, and the Markdown tables
// (report.md) that the HTML page repeats.
import { DistillError } from '../../core/errors.js';
import { compareToBaseline, CLEAR_DIFFERENCE_Z, type Verdict } from '../uncertainty.js';
import { expertsLabel, moeSummary, moeTable, type MoeSummary } from './moe.js';
import type { RunData, RunSettings } from './read.js';

export interface StudentSummary {
  name: string;
  baseline: boolean;
  heldOutCE: number | null;
  /** Standard error of heldOutCE over held-out sequences (null: not recorded). */
  heldOutCEStdErr: number | null;
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
  /** How it was trained (trainer-state.json) and what it was scored on (eval.json). */
  settings?: RunSettings;
  heldOut?: { sha256: string; sequences: number };
  reference?: { name: string; sha256: string };
}

export interface ReportSummary {
  teacher: { heldOutCE: number; perplexity: number; params?: number; activeParams?: number } | null;
  cache: { bytesPerPosition: number } | null;
  students: StudentSummary[];
  /**
   * The distilled student with the lowest held-out CE, and its gain over the best baseline (nats) with its
   * standard error (paired over the same held-out sequences when both record them) and the verdict it supports.
   */
  best: {
    distilled: string;
    baseline: string | null;
    ceGainOverBaseline: number | null;
    ceGainStdErr?: number | null;
    paired?: boolean;
    verdict?: Verdict;
  } | null;
  /** Runs scored on different held-out data or against different teachers, reported together on request. */
  mixed?: { heldOut: string[]; teachers: string[] };
  /** Runs whose eval.json does not say what they were scored on (written before it recorded that). */
  unrecorded?: string[];
}

export interface SummaryOptions {
  /** Compare runs scored on different held-out data or against different teachers (the page says so). */
  allowMixed?: boolean;
}

const short = (sha: string) => `${sha.slice(0, 12)}…`;

/** Groups of runs by what they were scored on: held-out data, and teacher; more than one group is a mix. */
function scoredOn(runs: RunData[]): {
  heldOut: Map<string, string[]>;
  teachers: Map<string, string[]>;
  unrecorded: string[];
} {
  const heldOut = new Map<string, string[]>();
  const teachers = new Map<string, string[]>();
  const unrecorded: string[] = [];
  for (const r of runs) {
    const h = r.eval.heldOut;
    if (!h) unrecorded.push(r.name);
    else heldOut.set(h.sha256, [...(heldOut.get(h.sha256) ?? []), r.name]);
    const t = r.eval.reference;
    if (t) teachers.set(t.sha256, [...(teachers.get(t.sha256) ?? []), r.name]);
  }
  return { heldOut, teachers, unrecorded };
}

const describeGroups = (groups: Map<string, string[]>, label: (sha: string) => string) =>
  [...groups].map(([sha, names]) => `${names.join(', ')} on ${label(sha)}`);

/** Refuses runs scored on different held-out data or teachers unless `allowMixed`; returns what the page notes. */
function checkComparable(runs: RunData[], opts: SummaryOptions): Pick<ReportSummary, 'mixed' | 'unrecorded'> {
  const { heldOut, teachers, unrecorded } = scoredOn(runs);
  const teacherName = new Map(
    runs.flatMap((r) => (r.eval.reference ? [[r.eval.reference.sha256, r.eval.reference.name]] : [])),
  );
  const mixedHeldOut = heldOut.size > 1 ? describeGroups(heldOut, (sha) => `held-out data ${short(sha)}`) : [];
  const mixedTeachers =
    teachers.size > 1 ? describeGroups(teachers, (sha) => `teacher ${teacherName.get(sha) ?? ''} ${short(sha)}`) : [];
  if ((mixedHeldOut.length || mixedTeachers.length) && !opts.allowMixed) {
    const what = [mixedHeldOut.length ? 'held-out data' : '', mixedTeachers.length ? 'teachers' : '']
      .filter(Boolean)
      .join(' and ');
    throw new DistillError(
      'E_USAGE',
      `the runs were scored on different ${what}, so one verdict would compare unlike numbers`,
      {
        found: [...mixedHeldOut, ...mixedTeachers].join('; '),
        hint: 'evaluate every run on the same held-out dataset and teacher (`distill eval`), or pass `allowMixed` to report them together anyway (the report then says so)',
        field: 'allowMixed',
      },
    );
  }
  return {
    ...(mixedHeldOut.length || mixedTeachers.length
      ? { mixed: { heldOut: mixedHeldOut, teachers: mixedTeachers } }
      : {}),
    ...(unrecorded.length && unrecorded.length < runs.length ? { unrecorded } : {}),
  };
}

/** JSON has no NaN/Infinity: those become null. */
const fin = (v: number | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function buildSummary(runs: RunData[], opts: SummaryOptions = {}): ReportSummary {
  const comparable = checkComparable(runs, opts);
  const teacherRun = runs.find((r) => r.eval.teacher);
  const cacheRun = runs.find((r) => r.eval.cache && Number.isFinite(r.eval.cache.bytesPerPosition));
  const students: StudentSummary[] = runs.map((r) => {
    const e = r.eval;
    const last = r.metrics[r.metrics.length - 1];
    const s: StudentSummary = {
      name: r.name,
      baseline: e.baseline,
      heldOutCE: fin(e.heldOutCE),
      heldOutCEStdErr: fin(e.heldOutCEStdErr),
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
    if (r.settings) s.settings = r.settings;
    if (e.heldOut) s.heldOut = { sha256: e.heldOut.sha256, sequences: e.heldOut.sequences };
    if (e.reference) s.reference = { name: e.reference.name, sha256: e.reference.sha256 };
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
    best: distilled ? bestOf(runs, distilled, baseline) : null,
    ...comparable,
  };
}

/** The best distilled student against the best baseline: the CE gain, its standard error and the verdict. */
function bestOf(
  runs: RunData[],
  distilled: StudentSummary,
  baseline: StudentSummary | undefined,
): ReportSummary['best'] {
  if (!baseline || baseline.heldOutCE === null || distilled.heldOutCE === null)
    return { distilled: distilled.name, baseline: baseline?.name ?? null, ceGainOverBaseline: null };
  const gain = baseline.heldOutCE - distilled.heldOutCE;
  const evalOf = (name: string) => runs.find((r) => r.name === name)?.eval ?? { heldOutCE: NaN };
  const cmp = compareToBaseline(evalOf(baseline.name), evalOf(distilled.name));
  return {
    distilled: distilled.name,
    baseline: baseline.name,
    ceGainOverBaseline: gain,
    ceGainStdErr: cmp.stdErr,
    ...(cmp.stdErr !== null ? { paired: cmp.paired, verdict: cmp.verdict } : {}),
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

/** One sentence: who is better on held-out CE, by how much and how sure, or that there is no clear difference. */
export function verdict(s: ReportSummary): string {
  const mixed = s.mixed
    ? ` Caution: these runs were scored on different ${[s.mixed.heldOut.length ? 'held-out data' : '', s.mixed.teachers.length ? 'teachers' : ''].filter(Boolean).join(' and ')}, so their numbers do not compare directly.`
    : '';
  if (!s.best) return `No distilled student with a held-out cross-entropy.${mixed}`;
  const b = s.best;
  if (b.baseline === null || b.ceGainOverBaseline === null)
    return `Best distilled student: ${b.distilled} (no CE-only baseline to compare with).${mixed}`;
  const g = b.ceGainOverBaseline;
  const se = b.ceGainStdErr;
  if (se === null || se === undefined || !b.verdict) {
    const raw =
      g > 0
        ? `Best distilled student ${b.distilled} beats the CE-only baseline (${b.baseline}) by ${g.toFixed(4)} nats of held-out cross-entropy`
        : `The CE-only baseline (${b.baseline}) is not beaten: the best distilled student ${b.distilled} is ${(-g).toFixed(4)} nats worse on held-out cross-entropy`;
    return `${raw}, but its eval.json records no standard error, so whether that is more than noise is unknown (evaluate again with this version of \`distill eval\`).${mixed}`;
  }
  const pm = `${Math.abs(g).toFixed(4)} ± ${se.toFixed(4)} nats of held-out cross-entropy (one standard error over held-out sequences${b.paired ? ', paired' : ''})`;
  if (b.verdict === 'distillation')
    return `Distillation wins: the best distilled student ${b.distilled} beats the CE-only baseline (${b.baseline}) by ${pm}.${mixed}`;
  if (b.verdict === 'baseline')
    return `The CE-only baseline (${b.baseline}) beats the best distilled student ${b.distilled} by ${pm}.${mixed}`;
  return `No clear difference: the best distilled student ${b.distilled} and the CE-only baseline (${b.baseline}) differ by ${pm}, inside ±${CLEAR_DIFFERENCE_Z} standard errors.${mixed}`;
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
