// The test run's own temp folder (test/setup/global.ts): every suite's temp files land under it, and the run removes
// it when it ends, so repeated runs leave nothing behind in the system's temp directory.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

describe('test temp folder', () => {
  it('is the run’s own folder, in the workers and in the processes they start', () => {
    const tmp = os.tmpdir();
    expect(path.basename(tmp)).toMatch(/^distillery-test-/);
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(require("node:os").tmpdir())'], {
      encoding: 'utf8',
    });
    expect(child.stdout).toBe(tmp);
  });
});
