// One CLI voice: library errors name option fields (`topK`), never CLI flags; the CLI renames fields to
// its flags in one place (BaseCommand, from each command's flags); number flags say what they expected.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { closest, describeNumber, fieldFlagMap, parseNumberFlag } from '../../cli/flags.js';
import { DistillError } from '../../src/core/errors.js';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

/** Every string and template literal in a file (comments excluded), with its line. */
function literals(file: string): Array<{ text: string; line: number }> {
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: Array<{ text: string; line: number }> = [];
  const visit = (n: ts.Node) => {
    if (ts.isStringLiteralLike(n) || ts.isTemplateHead(n) || ts.isTemplateMiddle(n) || ts.isTemplateTail(n))
      out.push({ text: n.text, line: src.getLineAndCharacterOfPosition(n.getStart()).line + 1 });
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

/** Command-line options of other programs that library hints may quote (vLLM's server flags among them). */
const OTHER_PROGRAMS = ['--import', '--max-logprobs', '--served-model-name'];

describe('library code names option fields, not CLI flags', () => {
  it('has no --flag in any string of src/, losses/ or schedules/', () => {
    const hits: string[] = [];
    for (const file of ['src', 'losses', 'schedules'].flatMap((d) => sourceFiles(d))) {
      for (const { text, line } of literals(file)) {
        for (const m of text.matchAll(/(?:^|[\s(`'"])(--[a-z][a-z0-9-]*)/g)) {
          if (!OTHER_PROGRAMS.includes(m[1] ?? '')) hits.push(`${file}:${line}: ${m[1]}`);
        }
      }
    }
    expect(hits).toEqual([]);
  });

  it('renames backticked fields everywhere in the message and keeps the rest', () => {
    const e = new DistillError('E_USAGE', '`topK` exceeds the vocabulary', {
      expected: '`topK` ≤ 257',
      found: '300',
      hint: 'lower `topK` or set `s3.endpoint`; `unknownField` stays',
      field: 'topK',
    });
    const map = fieldFlagMap({ 'top-k': {}, out: {} }, { 's3.endpoint': 's3-endpoint' });
    const r = e.renameFields((f) => (map.has(f) ? `--${map.get(f)}` : undefined));
    expect(r.message).toBe(
      '--top-k exceeds the vocabulary: expected --top-k ≤ 257, got 300. lower --top-k or set --s3-endpoint; `unknownField` stays',
    );
    expect(r.code).toBe('E_USAGE');
    expect(r.details.field).toBe('topK');
    expect(r.stack).toBe(e.stack);
    expect(e.message).toContain('`topK` exceeds');
  });

  it('derives the field of each flag and takes overrides', () => {
    const map = fieldFlagMap({ 'batch-size': {}, 'grad-accum': {}, clip: {} }, { clipNorm: 'clip' });
    expect(map.get('batchSize')).toBe('batch-size');
    expect(map.get('gradAccum')).toBe('grad-accum');
    expect(map.get('clipNorm')).toBe('clip');
  });
});

describe('number flags', () => {
  it.each([
    ['10', true, { min: 1 }, 10],
    ['-3', true, {}, -3],
    ['3e-4', false, { gt: 0 }, 3e-4],
    ['.5', false, { min: 0, lt: 1 }, 0.5],
    ['0', false, { min: 0, lt: 1 }, 0],
  ] as const)('accepts %s', (input, integer, bounds, want) => {
    expect(parseNumberFlag(input, 'x', integer, bounds)).toBe(want);
  });

  it.each([
    ['ten', true, { min: 1 }, 'an integer ≥ 1'],
    ['1.5', true, { min: 1 }, 'an integer ≥ 1'],
    ['1e3', true, {}, 'an integer'],
    ['0', true, { min: 1 }, 'an integer ≥ 1'],
    ['99999999999999999999', true, {}, 'an integer'],
    ['NaN', false, {}, 'a number'],
    ['Infinity', false, { gt: 0 }, 'a number > 0'],
    ['0', false, { gt: 0 }, 'a number > 0'],
    ['1', false, { min: 0, lt: 1 }, 'a number in [0, 1)'],
    ['', false, {}, 'a number'],
    ['0x10', true, {}, 'an integer'],
  ] as const)('refuses %j saying what it expected', (input, integer, bounds, expected) => {
    let err: unknown;
    try {
      parseNumberFlag(input, 'steps', integer, bounds);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DistillError);
    expect((err as DistillError).message).toBe(`invalid --steps: expected ${expected}, got ${JSON.stringify(input)}`);
  });

  it('describes ranges', () => {
    expect(describeNumber(false, { gt: 0, max: 2 })).toBe('a number in (0, 2]');
    expect(describeNumber(true, { max: 9 })).toBe('an integer ≤ 9');
  });
});

describe('did you mean', () => {
  it('finds the flag a typo meant', () => {
    const flags = ['--top-k', '--temperature', '--samples', '--seed', '--shards', '--out'];
    expect(closest('--topk', flags)).toBe('--top-k');
    expect(closest('--TOP_K', flags)).toBe('--top-k');
    expect(closest('--temprature', flags)).toBe('--temperature');
    expect(closest('--shard', flags)).toBe('--shards');
    expect(closest('--frobnicate', flags)).toBeUndefined();
  });
});
