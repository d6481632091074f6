// The demo with a mixture-of-experts teacher (small budget): the three dense students and a small MoE student
// distill in one pass over the MoE teacher's cache beside the CE-only baseline; the result and the report list
// total and active parameters. The teacher here is a random MoE model exported to ONNX (the trained fixture
// teacher is fixtures/teacher-moe/); `--teacher dense` is the original demo (test/demo/demo.test.ts).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { activeParameterCount, parameterCount, parseModelConfig } from '../../src/core/model.js';
import { runDemo } from '../../src/demo/index.js';
import { initParams } from '../../src/engine/index.js';
import type { ReportSummary } from '../../src/eval/index.js';
import { buildOnnxModel } from '../../src/student/export.js';

describe('distill demo with an MoE teacher (small budget)', () => {
  it('distills dense students and a small MoE student from the MoE teacher, listing active parameters', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-demo-moe-'));
    const teacher = parseModelConfig({
      vocabSize: 257,
      dModel: 32,
      nLayers: 2,
      nHeads: 2,
      nKvHeads: 1,
      ffnDim: 48,
      contextLength: 128,
      tieEmbeddings: true,
      moe: { experts: 4, activeExperts: 1, expertFfnDim: 24, every: 2 },
    });
    const model = path.join(dir, 'teacher-moe.onnx');
    writeFileSync(model, buildOnnxModel(teacher, initParams(teacher, 3, { std: 0.1 })));
    const res = await runDemo({ out: path.join(dir, 'demo'), budget: 'small', teacher: 'moe', teacherModel: model });

    expect(res.teacher).toMatchObject({ kind: 'moe', model, params: null, activeParams: null });
    const kd = res.students.filter((s) => !s.baseline);
    expect(kd.map((s) => s.name)).toEqual([
      'medium-hard-to-soft',
      'small-constant',
      'tiny-linear',
      'small-moe-constant',
    ]);
    const moe = kd.find((s) => s.name === 'small-moe-constant');
    const small = kd.find((s) => s.name === 'small-constant');
    const moeConfig = JSON.parse(readFileSync(path.join(moe?.dir ?? '', 'config.json'), 'utf8'));
    expect(moe?.params).toBe(parameterCount(parseModelConfig(moeConfig)));
    expect(moe?.activeParams).toBe(activeParameterCount(parseModelConfig(moeConfig)));
    expect(moe?.activeParams).toBeLessThan(moe?.params ?? 0);
    // About small-constant's active parameters (its FFN width in routed + shared experts), more in total.
    expect(Math.abs((moe?.activeParams ?? 0) / (small?.activeParams ?? 1) - 1)).toBeLessThan(0.01);
    expect(moe?.params).toBeGreaterThan(1.3 * (small?.params ?? 0));
    for (const s of res.students.filter((x) => x.name !== 'small-moe-constant')) expect(s.activeParams).toBe(s.params);
    expect(res.students.filter((s) => s.baseline).map((s) => s.name)).toEqual(['medium-baseline']);

    const summary = JSON.parse(readFileSync(res.report.summary, 'utf8')) as ReportSummary;
    const row = summary.students.find((s) => s.name === 'small-moe-constant');
    expect(row?.activeParams).toBe(moe?.activeParams);
    expect(row?.moe?.layers.map((l) => l.layer)).toEqual([1]);
    // The teacher's size comes from its export's distillery.config metadata.
    expect(summary.teacher).toMatchObject({
      params: parameterCount(teacher),
      activeParams: activeParameterCount(teacher),
    });
    const md = readFileSync(res.report.markdown, 'utf8');
    expect(md).toContain(
      `| teacher (reference) | ${(parameterCount(teacher) / 1e3).toFixed(1)}k | ${(activeParameterCount(teacher) / 1e3).toFixed(1)}k |`,
    );
    expect(md).toContain('4 routed (top-1) + 1 shared, every 2nd layer');
    expect(readFileSync(res.report.html, 'utf8')).toContain('small-moe-constant: layer 1 expert load over training');
  }, 300_000);

  it('refuses a teacher file that does not exist, naming it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-demo-moe-'));
    const missing = path.join(dir, 'nope.onnx');
    await expect(runDemo({ out: path.join(dir, 'demo'), budget: 'small', teacherModel: missing })).rejects.toThrow(
      new RegExp(`expected ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
  });
});
