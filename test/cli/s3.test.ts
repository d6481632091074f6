// S3 through the CLI: every command that takes an s3:// URI takes the same --s3-* flags; a cache written and
// read through them on the test's S3 server (s3rver); missing credentials named as such, with the places the
// SDK looked; and no SDK notice about the Node version on stderr.
import path from 'node:path';
import { Config } from '@oclif/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { s3Flags } from '../../cli/s3-flags.js';
import { distillAsync } from '../helpers/cli.js';
import { buildFixture, fixturePaths } from './fixture.js';
import { distillInProcess } from './in-process.js';

const P = fixturePaths('s3');
const endpoint = () => process.env.DISTILLERY_TEST_S3_ENDPOINT ?? '';
const bucket = () => process.env.DISTILLERY_TEST_S3_BUCKET ?? '';
const creds = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
/** No credentials anywhere the SDK looks (and no instance metadata service to wait for). */
const noCreds = {
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_SHARED_CREDENTIALS_FILE: path.join(P.dir, 'no-credentials'),
  AWS_CONFIG_FILE: path.join(P.dir, 'no-config'),
  AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
  AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
  AWS_EC2_METADATA_DISABLED: 'true',
};

describe('S3 from the command line', () => {
  beforeAll(() => buildFixture(P));

  // First: the process keeps one S3 client per configuration, and a client remembers the credentials it found.
  it('reports missing credentials as such, naming where the SDK looked, on one line', async () => {
    const r = await distillInProcess(
      ['cache', 'inspect', `s3://${bucket()}/nothing`, '--s3-endpoint', endpoint()],
      noCreds,
    );
    expect(r.status).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^Error: \[E_STORE_DENIED\] no AWS credentials were found \(while trying to read s3:\/\//);
    for (const place of [
      'AWS_ACCESS_KEY_ID',
      'AWS_PROFILE',
      '~/.aws/credentials',
      '~/.aws/config',
      'AWS_WEB_IDENTITY_TOKEN_FILE',
      'instance metadata',
    ])
      expect(lines[0]).toContain(place);
    expect(lines[0]).not.toMatch(/network|endpoint/);
  });

  it('every command that takes an s3:// URI takes the same --s3-* flags', async () => {
    const config = await Config.load(path.resolve('bin/run.js'));
    const takesS3 = config.commands.filter((c) =>
      [...Object.values(c.flags ?? {}), ...Object.values(c.args ?? {})].some((f) =>
        /s3:\/\//.test(String((f as { description?: string }).description ?? '')),
      ),
    );
    expect(takesS3.map((c) => c.id).sort()).toEqual(
      expect.arrayContaining(['cache:inspect', 'eval', 'student:train', 'teacher:run']),
    );
    for (const c of takesS3)
      for (const flag of Object.keys(s3Flags)) expect(Object.keys(c.flags), `${c.id} --${flag}`).toContain(flag);
  });

  it('writes a cache with teacher run, then inspects it and evaluates against it, all through the flags', async () => {
    const uri = `s3://${bucket()}/cli-s3/${path.basename(P.dir)}`;
    const s3 = ['--s3-endpoint', endpoint(), '--s3-region', 'us-east-1'];
    const run = await distillInProcess(
      [
        'teacher',
        'run',
        '--model',
        P.teacher,
        '--data',
        P.val,
        '--out',
        uri,
        '--top-k',
        '4',
        '--workers',
        '1',
        ...s3,
        '--json',
      ],
      creds,
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.json().finalized).toBe(true);
    const inspect = await distillInProcess(['cache', 'inspect', uri, ...s3, '--json'], creds);
    expect(inspect.status, inspect.stderr).toBe(0);
    const ev = await distillInProcess(
      [
        'eval',
        '--checkpoint',
        P.ckpt,
        '--data',
        P.val,
        '--cache',
        uri,
        '--out',
        path.join(P.dir, 's3-eval.json'),
        ...s3,
        '--json',
      ],
      creds,
    );
    expect(ev.status, ev.stderr).toBe(0);
    expect(ev.json().support).toEqual({ source: 'cache', k: 4 });
  });

  it('prints no AWS SDK notice about the Node version (a real process)', async () => {
    const r = await distillAsync(['cache', 'inspect', `s3://${bucket()}/nothing`, '--s3-endpoint', endpoint()], {
      env: { ...creds, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\[E_NOT_FOUND\]/);
    expect(r.stderr + r.stdout).not.toMatch(/NodeVersionSupportWarning|will require node/);
  });
});
