// What a new user meets before the first command: npm reads no project config it does not know (the old
// .npmrc key made every `npx distill` warn), the install command of the README and CI skips onnxruntime-node's
// CUDA download through the variable its install script reads, the demo's default output is ignored by git,
// and the README states the Node range package.json declares.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Config } from '@oclif/core';
import { describe, expect, it } from 'vitest';

const read = (f: string) => readFileSync(f, 'utf8');

describe('install and first steps', () => {
  it('npm warns about no unknown project config', () => {
    const r = spawnSync('npm', ['config', 'list'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/Unknown (project|user|env) config/);
  });

  it('the README and CI install with ONNXRUNTIME_NODE_INSTALL=skip, the variable onnxruntime-node reads', () => {
    const install = 'ONNXRUNTIME_NODE_INSTALL=skip npm ci';
    expect(read('README.md')).toContain(install);
    expect(read('.ci/run')).toContain(install);
    // onnxruntime-node's script/install-utils.js, parseInstallFlag: the variable, then npm config.
    const utils = read('node_modules/onnxruntime-node/script/install-utils.js');
    expect(utils).toMatch(/process\.env\.ONNXRUNTIME_NODE_INSTALL\b/);
    expect(utils).toMatch(/case 'skip':\s*return false;/);
    expect(existsSync('.npmrc') ? read('.npmrc') : '').not.toMatch(/onnxruntime/);
  });

  it("git ignores the demo's default output folder", async () => {
    const config = await Config.load(path.resolve('bin/run.js'));
    const out = config.findCommand('demo')?.flags.out?.default;
    expect(typeof out).toBe('string');
    const r = spawnSync('git', ['check-ignore', '-q', `${out}/report/report.html`]);
    expect(r.status).toBe(0);
  });

  it('the README states the Node range of package.json', () => {
    const engines = JSON.parse(read('package.json')).engines.node as string;
    expect(engines).toBe('^20.19.0 || >=22.12.0');
    expect(read('README.md')).toContain(`\`engines\` is \`${engines}\``);
  });
});
