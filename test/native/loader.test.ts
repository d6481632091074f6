// The native addon loads (the real build) and reports its variant; a bad path gives an aggregated error.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../src/native/loader.js';

describe('native loader', () => {
  it('loads the real addon', () => {
    const { info, file } = loadNative();
    expect(['cpu', 'cuda']).toContain(info.variant);
    expect(info.threads).toBeGreaterThan(0);
    expect(file).toMatch(/distillery_(cpu|cuda)\.node$/);
  });

  it('names every path it tried when nothing loads', () => {
    const script = `import('./src/native/loader.ts').then(m => { try { m.loadNative() } catch (e) { console.log(e.code + ' ' + e.message) } })`;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      env: { ...process.env, DISTILLERY_NATIVE_DIR: '/nonexistent/dir' },
      encoding: 'utf8',
    });
    expect(res.stdout).toMatch(/^E_NATIVE_LOAD the native addon could not be loaded/);
    expect(res.stdout).toContain('/nonexistent/dir/Release/distillery_cuda.node: not built');
    expect(res.stdout).toContain('/nonexistent/dir/Release/distillery_cpu.node: not built');
    expect(res.stdout).toContain('npm run build:native');
  });
});
