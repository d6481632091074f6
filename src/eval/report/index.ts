// `distill report`: reads run directories and writes report.html, report.md and summary.json into one
// folder. Each file is written to a temporary name and renamed, so a failed report leaves no whole-looking file.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDistillError } from '../../core/errors.js';
import { ioError } from '../../core/io-errors.js';
import type { ProgressFn } from '../../core/types.js';
import { makeDir } from '../../store/index.js';
import { renderHtml } from './html.js';
import { readRuns, type RunData } from './read.js';
import { buildSummary, renderMarkdown, type ReportSummary } from './summary.js';

export interface ReportOptions {
  title?: string;
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
): { html: string; markdown: string; summary: ReportSummary } {
  const summary = buildSummary(runs);
  return { html: renderHtml(summary, runs, title), markdown: renderMarkdown(summary, title), summary };
}

export async function writeReport(runDirs: string[], outDir: string, opts: ReportOptions = {}): Promise<ReportResult> {
  opts.progress?.({ phase: 'report', done: 0, total: 3, unit: 'steps', message: 'reading runs' });
  const runs = readRuns(runDirs);
  opts.progress?.({ phase: 'report', done: 1, total: 3, unit: 'steps', message: 'rendering' });
  const r = renderReport(runs, opts.title);
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
