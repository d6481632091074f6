// The small real world the CLI tests run against: a byte-level dataset (with a held-out split) of the
// fixture corpus, the fixture teacher's cache of it, and a one-step checkpoint of a tiny student,
// all made through the CLI in this process; plus builders for valid command lines to spoil.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { distillInProcess } from './in-process.js';

export interface Fixture {
  dir: string;
  data: string;
  val: string;
  cache: string;
  run: string;
  ckpt: string;
  kid: string;
  text: string;
  /** A regular file, to put paths under. */
  file: string;
  teacher: string;
}

/** Fixture paths under a new temporary folder (nothing made yet: see buildFixture). */
export function fixturePaths(name: string): Fixture {
  const dir = mkdtempSync(path.join(os.tmpdir(), `distill-${name}-`));
  return {
    dir,
    data: path.join(dir, 'tokens.arrow'),
    val: path.join(dir, 'tokens.val.arrow'),
    cache: path.join(dir, 'cache'),
    run: path.join(dir, 'run'),
    ckpt: path.join(dir, 'run', 'kid'),
    kid: path.join(dir, 'kid.json'),
    text: path.join(dir, 'doc.txt'),
    file: path.join(dir, 'a-file'),
    teacher: 'fixtures/teacher/model.onnx',
  };
}

/** `cmd` with `base` flags, each replaced by `over` (oclif refuses a repeated flag); null drops one, '' is a bare flag. */
export function line(cmd: string[], base: Record<string, string>, over: Record<string, string | null> = {}): string[] {
  const flags = { ...base, ...over };
  return [
    ...cmd,
    ...Object.entries(flags).flatMap(([k, v]) => (v === null ? [] : v === '' ? [`--${k}`] : [`--${k}`, v])),
  ];
}

export const trainFlags = (P: Fixture, out: string, steps = '2') => ({
  config: P.kid,
  data: P.data,
  steps,
  'batch-size': '2',
  lr: '1e-3',
  seed: '1',
  out,
});

export const teacherFlags = (P: Fixture, out: string) => ({ model: P.teacher, data: P.data, out, 'top-k': '4' });

/** Makes the dataset, the cache and the checkpoint (a few seconds). */
/** `data prepare` of the fixture's corpus into P.data (and its validation split). */
export const prepareArgs = (P: Fixture) => [
  'data',
  'prepare',
  '--text',
  'fixtures/corpus/jonah.txt',
  '--seq-len',
  '32',
  '--out',
  P.data,
  '--val-fraction',
  '0.2',
];

export async function buildFixture(P: Fixture): Promise<void> {
  writeFileSync(P.text, 'In the beginning was the word. '.repeat(40));
  writeFileSync(P.file, 'not a folder');
  writeFileSync(
    P.kid,
    JSON.stringify({ vocabSize: 257, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 32, contextLength: 32 }),
  );
  const ok = async (args: string[]) => {
    const r = await distillInProcess(args);
    if (r.status !== 0) throw new Error(`fixture: distill ${args.join(' ')} failed\n${r.stderr}`);
  };
  await ok(prepareArgs(P));
  await ok([
    'teacher',
    'run',
    '--model',
    P.teacher,
    '--data',
    P.data,
    '--out',
    P.cache,
    '--top-k',
    '4',
    '--workers',
    '1',
  ]);
  mkdirSync(P.run, { recursive: true });
  await ok(line(['student', 'train'], trainFlags(P, P.run, '1')));
  await ok(['eval', '--checkpoint', P.ckpt, '--data', P.val, '--teacher', P.teacher]);
}
