// `distill report`: reads run directories and writes report.html, report.md and summary.json into one
// folder. Each file is written to a temporary name and renamed, so a failed report leaves no whole-looking file.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDistillError } from '../../core/errors.js';
import { ioError } from '../../core/io-errors.js';
import type { ProgressFn } from '../../core/types.js';
import { inspectCache, makeDir } from '../../store/index.js';
import { renderHtml } from './html.js';
import { readRuns, type RunData } from './read.js';
import { sampleCompletions, type SampleCompletions, type SampleOptions } from './samples.js';
import { buildSummary, renderMarkdown, type ReportSummary } from './summary.js';

export interface ReportOptions {
  title?: string;
  /** Report runs scored on different held-out data or against different teachers together (the page says so). */
  allowMixed?: boolean;
  /** Sample completions of a few held-out prompts by the teacher and every student with a checkpoint. */
  samples?: SampleOptions;
  progress?: ProgressFn;
}

export interface ReportResult {
  out: string;
  files: { html: string; markdown: string; summary: string };
  summary: ReportSummary;
}

/** Renders the three report files in memory (no file system access beyond reading the runs). */
export function renderReport(
  runs: RunData[],
  title?: string,
  opts: { allowMixed?: boolean; samples?: SampleCompletions } = {},
): { html: string; markdown: string; summary: ReportSummary } {
  const summary = buildSummary(runs, opts);
  return { html: renderHtml(summary, runs, title, opts.samples), markdown: renderMarkdown(summary, title), summary };
}

/** k and encodings of each run's local logit cache, for the settings table (a cache that cannot be read is left out). */
async function readCacheInputs(runs: RunData[]): Promise<void> {
  for (const r of runs) {
    const uri = r.eval.cache?.uri;
    if (!uri || /^s3:\/\//i.test(uri)) continue;
    try {
      const c = await inspectCache(uri);
      r.cacheInputs = { k: c.k, encodings: c.encodings };
    } catch {
      // Moved or deleted since training: the table shows —.
    }
  }
}

export async function writeReport(runDirs: string[], outDir: string, opts: ReportOptions = {}): Promise<ReportResult> {
  opts.progress?.({ phase: 'report', done: 0, total: 3, unit: 'steps', message: 'reading runs' });
  const runs = readRuns(runDirs);
  await readCacheInputs(runs);
  opts.progress?.({ phase: 'report', done: 1, total: 3, unit: 'steps', message: 'rendering' });
  const samples = opts.samples ? await sampleCompletions(runs, opts.samples) : undefined;
  const r = renderReport(runs, opts.title, { allowMixed: opts.allowMixed ?? false, ...(samples ? { samples } : {}) });
  const files = {
    html: path.join(outDir, 'report.html'),
    markdown: path.join(outDir, 'report.md'),
    summary: path.join(outDir, 'summary.json'),
  };
  const contents: Array<[string, string]> = [
    [files.summary, `${JSON.stringify(r.summary, null, 2)}\n`],
    [files.markdown, r.markdown],
    [files.html, r.html],
  ];
  const tmpOf = (file: string): string => `${file}.tmp-${process.pid}`;
  const tmps: string[] = [];
  try {
    makeDir(outDir);
    for (const [file, text] of contents) {
      tmps.push(tmpOf(file));
      writeFileSync(tmpOf(file), text);
    }
    for (const [file] of contents) renameSync(tmpOf(file), file);
  } catch (err) {
    for (const t of tmps) rmSync(t, { force: true });
    throw isDistillError(err) ? err : ioError(err, 'write the report to', outDir);
  }
  opts.progress?.({ phase: 'report', done: 3, total: 3, unit: 'steps', message: 'written' });
  return { out: outDir, files, summary: r.summary };
}

export { readRun, readRuns, expandRunDirs } from './read.js';
export type { RunData, RunEval } from './read.js';
export { buildSummary, renderMarkdown } from './summary.js';
export type { ReportSummary, StudentSummary } from './summary.js';
export { renderHtml } from './html.js';
export { sampleCompletions } from './samples.js';
export type { SampleCompletions, SampleOptions } from './samples.js';
