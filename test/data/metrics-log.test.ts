// metrics.jsonl: rows written by the one writer read back exactly (NaN as null and back); a torn last line
// (no newline yet) is left out; a damaged line elsewhere is an error naming the file and the line.
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { appendMetricsRow, readMetricsLog, writeMetricsLog, type MetricsRow } from '../../src/data/metrics-log.js';

const row = (step: number, extra: Partial<MetricsRow> = {}): MetricsRow => ({
  step,
  loss: 2 - step / 10,
  hardLoss: 2.5 - step / 10,
  softLoss: 1.5,
  hard: 0.5,
  soft: 0.5,
  lr: 1e-3,
  tokensPerSecond: 1000 + step,
  temperature: 2,
  agreement: 0.25,
  gradNorm: 0.75,
  tokens: 64 * step,
  ...extra,
});

const tmpFile = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'distill-metrics-')), 'metrics.jsonl');

function failure(fn: () => unknown): DistillError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DistillError) return err;
    throw err;
  }
  throw new Error('expected a DistillError');
}

describe('metrics.jsonl', () => {
  it('round-trips rows; NaN is written as null and read back as NaN', () => {
    const file = tmpFile();
    writeMetricsLog(file, [row(1)]);
    appendMetricsRow(file, row(2, { agreement: NaN }));
    const log = readMetricsLog(file);
    expect(log.skipped).toBe(0);
    expect(log.rows).toEqual([row(1), row(2, { agreement: NaN })]);
  });

  it('reads rows that lack optional metrics as NaN (only the step is required)', () => {
    const file = tmpFile();
    writeFileSync(file, '{"step": 1, "hardLoss": 3}\n');
    const [r] = readMetricsLog(file).rows;
    expect(r!.step).toBe(1);
    expect(r!.hardLoss).toBe(3);
    expect(r!.softLoss).toBeNaN();
  });

  it('leaves out a last line without its newline, even one that parses', () => {
    const file = tmpFile();
    writeMetricsLog(file, [row(1), row(2)]);
    appendFileSync(file, '{"step": 3, "loss": 2.');
    expect(readMetricsLog(file)).toMatchObject({ skipped: 1, rows: [{ step: 1 }, { step: 2 }] });
    writeMetricsLog(file, [row(1)]);
    appendFileSync(file, JSON.stringify(row(2)));
    expect(readMetricsLog(file)).toMatchObject({ skipped: 1, rows: [{ step: 1 }] });
  });

  it('names the file and line of a damaged line before the end', () => {
    const file = tmpFile();
    writeFileSync(file, `${JSON.stringify(row(1))}\n{oops\n${JSON.stringify(row(3))}\n`);
    const bad = failure(() => readMetricsLog(file));
    expect(bad.code).toBe('E_DATA');
    expect(bad.message).toContain(`${file} line 2 is not valid JSON`);
    writeFileSync(file, `${JSON.stringify(row(1))}\n{"loss": 1}\n`);
    expect(failure(() => readMetricsLog(file)).message).toMatch(/line 2 is not a metrics row.*step/);
    expect(failure(() => readMetricsLog(path.join(path.dirname(file), 'absent.jsonl'))).code).toBe('E_NOT_FOUND');
  });
});
