// Student config files: bare and nested forms, CLI defaults overridden per file, relative schedule
// paths, and the errors that name the file.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadStudentSpec } from '../../src/student/config.js';

const model = { vocabSize: 11, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 12, contextLength: 8 };
const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-config-'));
const write = (name: string, v: unknown) => {
  const f = path.join(dir, name);
  writeFileSync(f, typeof v === 'string' ? v : JSON.stringify(v));
  return f;
};

describe('loadStudentSpec', () => {
  it('reads a bare model config with the CLI defaults', () => {
    const spec = loadStudentSpec(write('tiny.json', model), { loss: 'forward-kl', temperature: 2 });
    expect(spec).toMatchObject({ name: 'tiny', loss: 'forward-kl', temperature: 2 });
    expect(spec.config).toMatchObject({ ...model, tieEmbeddings: false, ropeTheta: 10000 });
  });

  it('lets a nested config override the defaults and resolves a relative schedule path', () => {
    const spec = loadStudentSpec(
      write('kd.json', { model, distill: { loss: 'jsd', beta: 0.3, schedule: './sched.js', params: { a: 1 } } }),
      { loss: 'forward-kl', temperature: 2, schedule: 'linear' },
    );
    expect(spec).toMatchObject({
      name: 'kd',
      loss: 'jsd',
      beta: 0.3,
      temperature: 2,
      schedule: path.join(dir, 'sched.js'),
      scheduleParams: { a: 1 },
    });
  });

  it('names the file and the rule on bad input', () => {
    expect(() => loadStudentSpec(write('heads.json', { ...model, nHeads: 3 }))).toThrow(
      /heads\.json: nHeads must divide dModel/,
    );
    expect(() => loadStudentSpec(write('broken.json', '{ nope'))).toThrow(/broken\.json is not valid JSON/);
    expect(() => loadStudentSpec(write('extra.json', { model, distill: { lr: 1 } }))).toThrow(
      /invalid "distill" section in .*extra\.json/,
    );
    expect(() => loadStudentSpec(path.join(dir, 'missing.json'))).toThrow(/missing\.json not found/);
  });
});
