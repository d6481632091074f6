// Bad invocations as a new user types them: each must end with exit status 1 and exactly one line on
// stderr, `Error: [CODE] …`, naming what was expected — never a stack trace or the whole help text.
// The commands run in this process (test/cli/in-process.ts) against a real dataset, cache and checkpoint.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, fixturePaths, line, teacherFlags, trainFlags, prepareArgs } from './fixture.js';
import { distillInProcess } from './in-process.js';

const P = fixturePaths('bad-input');
const dir = P.dir;
/** The fixture dataset cut in half, as a full disk or an interrupted copy leaves it. */
const truncated = path.join(dir, 'truncated.arrow');
/** A student of about 14 billion parameters: 16 bytes each (weights, gradients, AdamW moments) fit no test machine. */
const huge = path.join(dir, 'huge.json');

/** A command line with the fixture paths in it, the code it must fail with, and what the line must say. */
type Row = [label: string, args: string[], code: string, match?: RegExp, status?: number];

/** A valid `student train` line but for `over`. */
const train = (over: Record<string, string | null> = {}) =>
  line(['student', 'train'], trainFlags(P, path.join(dir, 'out-train')), over);
/** A valid `teacher run` line but for `over`. */
const teacher = (over: Record<string, string | null> = {}) =>
  line(['teacher', 'run'], teacherFlags(P, path.join(dir, 'out-cache')), over);

const rows: Row[] = [
  // Flags: unknown, misspelled, missing, wrong type, out of range.
  ['misspelled flag', teacher({ topk: '4' }), 'E_USAGE', /unknown flag --topk.*did you mean --top-k\?/],
  ['misspelled boolean', ['demo', '--forse'], 'E_USAGE', /did you mean --force\?/],
  [
    'unknown flag without a near one',
    ['info', '--zzzzzzzz'],
    'E_USAGE',
    /unknown flag --zzzzzzzz.*distill info --help/,
  ],
  [
    'word for an integer',
    ['schedule', 'plot', 'linear', '--steps', 'ten'],
    'E_USAGE',
    /invalid --steps: expected an integer ≥ 1, got "ten"/,
  ],
  ['zero steps', train({ steps: '0' }), 'E_USAGE', /invalid --steps: expected an integer ≥ 1, got "0"/],
  ['fractional batch', train({ 'batch-size': '1.5' }), 'E_USAGE', /--batch-size: expected an integer ≥ 1/],
  ['negative lr', train({ lr: '-1' }), 'E_USAGE', /--lr: expected a number > 0/],
  ['lr as a word', train({ lr: 'fast' }), 'E_USAGE', /--lr: expected a number > 0, got "fast"/],
  ['negative clip', train({ clip: '-0.5' }), 'E_USAGE', /--clip: expected a number ≥ 0/],
  ['temperature 0', teacher({ temperature: '0' }), 'E_USAGE', /--temperature: expected a number > 0/],
  ['top-k 0', teacher({ 'top-k': '0' }), 'E_USAGE', /--top-k: expected an integer ≥ 1/],
  ['samples negative', teacher({ samples: '-2' }), 'E_USAGE', /--samples: expected an integer ≥ 0/],
  [
    'val fraction 1',
    ['data', 'prepare', '--text', P.text, '--seq-len', '8', '--out', path.join(dir, 'x.arrow'), '--val-fraction', '1'],
    'E_USAGE',
    /--val-fraction: expected a number in \[0, 1\)/,
  ],
  [
    'seq-len 1',
    ['data', 'prepare', '--text', P.text, '--seq-len', '1', '--out', path.join(dir, 'x.arrow')],
    'E_USAGE',
    /--seq-len: expected an integer ≥ 2/,
  ],
  [
    'width too small',
    ['schedule', 'plot', 'linear', '--steps', '5', '--width', '3'],
    'E_USAGE',
    /--width: expected an integer ≥ 8/,
  ],
  [
    'missing required flags',
    ['teacher', 'run', '--model', P.teacher],
    'E_USAGE',
    /missing required flags --data, --out, --top-k/,
  ],
  ['missing argument', ['cache', 'inspect'], 'E_USAGE', /missing required argument <uri>/],
  ['extra argument', ['cache', 'inspect', P.cache, 'extra'], 'E_USAGE', /unexpected argument extra/],
  [
    'option typo',
    teacher({ logp: 'floa32' }),
    'E_USAGE',
    /invalid --logp: expected one of float32, .*did you mean float32\?/,
  ],
  [
    'option of another flag',
    teacher({ compression: 'gzip' }),
    'E_USAGE',
    /invalid --compression: expected one of none, zstd, lz4/,
  ],
  ['flag without its value', ['schedule', 'plot', 'linear', '--steps'], 'E_USAGE', /--steps/],
  ['bad JSON params', ['schedule', 'plot', 'linear', '--steps', '5', '--params', '{x'], 'E_USAGE', /--params/],
  [
    'unknown schedule',
    ['schedule', 'plot', 'linearr', '--steps', '5'],
    'E_PLUGIN',
    /unknown schedule "linearr".*linear/,
  ],
  // Library checks named by their flags.
  ['bad device', teacher({ device: 'gpu0' }), 'E_USAGE', /invalid --device "gpu0"/],
  ['more shards than sequences', teacher({ shards: '100000' }), 'E_USAGE', /invalid --shards/],
  [
    'num-workers without an index',
    teacher({ 'num-workers': '4' }),
    'E_USAGE',
    /--num-workers needs a worker index.*--worker-index/,
  ],
  ['worker index past the count', teacher({ 'worker-index': '5', 'num-workers': '2' }), 'E_USAGE', /worker index/],
  ['top-k above the vocabulary', teacher({ 'top-k': '100000' }), 'E_USAGE', /--top-k exceeds the teacher's vocabulary/],
  [
    'schedule without cache',
    train({ schedule: 'linear' }),
    'E_USAGE',
    /no --cache was given.*pass --cache, or drop --schedule/,
  ],
  // Files that are not there or not what they should be.
  [
    'missing teacher',
    [
      'teacher',
      'run',
      '--model',
      path.join(dir, 'nope.onnx'),
      '--data',
      P.data,
      '--out',
      path.join(dir, 'c2'),
      '--top-k',
      '4',
    ],
    'E_NOT_FOUND',
  ],
  ['missing dataset', ['eval', '--checkpoint', P.ckpt, '--data', path.join(dir, 'nope.arrow')], 'E_NOT_FOUND'],
  ['missing cache', ['cache', 'inspect', path.join(dir, 'no-cache')], 'E_NOT_FOUND'],
  [
    'missing text',
    ['data', 'prepare', '--text', path.join(dir, 'nope.txt'), '--seq-len', '8', '--out', path.join(dir, 'y.arrow')],
    'E_NOT_FOUND',
  ],
  [
    'missing checkpoint',
    ['student', 'export', '--checkpoint', path.join(dir, 'nope'), '--out', path.join(dir, 'm.onnx')],
    'E_NOT_FOUND',
  ],
  [
    'unknown command',
    ['teacher', 'rn', '--model', P.teacher],
    'E_USAGE',
    /unknown command `teacher rn`.*`distill teacher run`/,
    2,
  ],
  ['unknown topic', ['tacher', 'run'], 'E_USAGE', /did you mean `distill teacher run`\?/, 2],
  // Outputs that exist are replaced only with --force; a cache only by the same inputs.
  [
    'prepare over an existing dataset',
    prepareArgs(P),
    'E_USAGE',
    /tokens\.arrow and .*tokens\.val\.arrow already exist\. pass --force to replace, or choose another --out/,
  ],
  [
    'export over an existing file',
    ['student', 'export', '--checkpoint', P.ckpt, '--out', P.file],
    'E_USAGE',
    /a-file already exists\. pass --force to replace it, or choose another --out/,
  ],
  [
    'eval over an existing eval.json',
    ['eval', '--checkpoint', P.ckpt, '--data', P.val],
    'E_USAGE',
    /kid\/eval\.json already exists\. pass --force to replace it, or write this evaluation elsewhere with --out/,
  ],
  [
    'a cache with another k in the same folder',
    line(['teacher', 'run'], teacherFlags(P, P.cache), { 'top-k': '8', workers: '1' }),
    'E_FINGERPRINT_MISMATCH',
    /already holds a different cache: .*the inputs that differ: k 4 in the cache, 8 now\. Write to a new prefix/,
  ],
  [
    'exponent for an integer',
    train({ steps: '1e3' }),
    'E_USAGE',
    /invalid --steps: expected an integer ≥ 1, got "1e3"/,
  ],
  [
    'negative validation fraction',
    [
      'data',
      'prepare',
      '--text',
      P.text,
      '--seq-len',
      '8',
      '--out',
      path.join(dir, 'v.arrow'),
      '--val-fraction',
      '-0.1',
    ],
    'E_USAGE',
    /--val-fraction: expected a number in \[0, 1\)/,
  ],
  ['negative gc age', ['cache', 'gc', P.cache, '--min-age', '-1'], 'E_USAGE', /--min-age: expected an integer ≥ 0/],
  [
    'eval top-k 0',
    ['eval', '--checkpoint', P.ckpt, '--data', P.val, '--top-k', '0'],
    'E_USAGE',
    /--top-k: expected an integer ≥ 1/,
  ],
  [
    'bad checksum mode',
    ['cache', 'inspect', P.cache, '--s3-checksums', 'ALWAYS'],
    'E_USAGE',
    /invalid --s3-checksums: expected one of WHEN_SUPPORTED, WHEN_REQUIRED/,
  ],
  [
    'missing tokenizer file',
    [
      'data',
      'prepare',
      '--text',
      P.text,
      '--seq-len',
      '8',
      '--out',
      path.join(dir, 't.arrow'),
      '--tokenizer',
      path.join(dir, 'nope.json'),
    ],
    'E_TOKENIZER',
  ],
  ['resume from nowhere', train({ resume: path.join(dir, 'no-run') }), 'E_NOT_FOUND'],
  ['verify a folder that is no cache', ['cache', 'verify', P.run], 'E_NOT_FOUND'],
  // Sizes checked against the data and the machine before any work.
  [
    'batch larger than the dataset',
    train({ 'batch-size': '100000' }),
    'E_USAGE',
    /--batch-size 100000 is larger than the dataset, which holds \d+ sequences: expected at most \d+ sequences per batch.*--grad-accum adds micro-batches/,
  ],
  [
    'a batch of a billion',
    train({ 'batch-size': '1000000000' }),
    'E_USAGE',
    /--batch-size 1000000000 is larger than the dataset/,
  ],
  [
    'a student too large for the memory',
    train({ config: huge }),
    'E_MEMORY',
    /training the student on batches of 2 × 32 needs about \d+\.\d GB of memory, more than the .* GB free: .*parameters and AdamW moments \d+\.\d GB.*train fewer or smaller students/,
  ],
  // Datasets cut short or not datasets at all.
  [
    'truncated dataset (teacher run)',
    teacher({ data: truncated }),
    'E_DATA',
    /token dataset .*truncated\.arrow is truncated: it ends without the Arrow file footer.*prepare it again with `distill data prepare`/,
  ],
  ['truncated dataset (student train)', train({ data: truncated }), 'E_DATA', /truncated\.arrow is truncated/],
  [
    'truncated dataset (eval)',
    ['eval', '--checkpoint', P.ckpt, '--data', truncated, '--out', path.join(dir, 'e.json')],
    'E_DATA',
    /truncated\.arrow is truncated/,
  ],
  [
    'a text file as dataset',
    train({ data: P.text }),
    'E_DATA',
    /doc\.txt is not a token dataset: expected an Arrow IPC file/,
  ],
  ['report of nothing', ['report', path.join(dir, 'nope'), '--out', path.join(dir, 'rep')], 'E_NOT_FOUND'],
];

describe('bad invocations: one line, a code, no stack', () => {
  beforeAll(async () => {
    await buildFixture(P);
    const whole = readFileSync(P.data);
    writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    writeFileSync(
      huge,
      JSON.stringify({
        vocabSize: 257,
        dModel: 4096,
        nLayers: 64,
        nHeads: 32,
        nKvHeads: 8,
        ffnDim: 14336,
        contextLength: 64,
      }),
    );
  });

  it.each(rows)('%s', async (_label, args, code, match, status = 1) => {
    const res = await distillInProcess(args);
    const lines = res.stderr.trimEnd().split('\n');
    expect(res.status, res.stderr).toBe(status);
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^Error: \[E_[A-Z_]+\] \S/);
    expect(lines[0]).toContain(`[${code}]`);
    expect(res.stderr).not.toMatch(/\n\s+at |^USAGE|^FLAGS/m);
    expect(res.stdout).toBe('');
    if (match) expect(lines[0]).toMatch(match);
  });

  it('prints the error as JSON with --json, field renamed to its flag', async () => {
    const res = await distillInProcess([...teacher({ shards: '100000' }), '--json']);
    expect(res.status).toBe(1);
    const j = res.json();
    expect(j.error.code).toBe('E_USAGE');
    expect(j.error.message).toMatch(/invalid --shards/);
    expect(j.error.field).toBe('shards');
  });
});
