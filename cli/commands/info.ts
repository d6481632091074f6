// `distill info`: versions, the native addon that loaded (CPU or CUDA variant), SIMD level, devices.
import { systemInfo, type SystemInfo } from '../../src/info.js';
import { BaseCommand } from '../base.js';

export default class Info extends BaseCommand<typeof Info> {
  static override description = 'Show the Distillery version, the native addon variant that loads, and visible devices';
  static override examples = ['<%= config.bin %> info', '<%= config.bin %> info --json'];

  async run(): Promise<SystemInfo> {
    const info = systemInfo();
    const n = info.native;
    this.log(`distillery ${info.version} on node ${info.node} (${info.platform}, ${info.cpus} CPUs)`);
    if ('error' in n) this.log(`native addon: NOT LOADED: ${n.error}`);
    else
      this.log(
        `native addon: ${n.variant} variant (${n.file}), ${n.simd}, ${n.threads} threads, CUDA devices: ${n.cudaDevices.length ? n.cudaDevices.join(', ') : 'none'}`,
      );
    return info;
  }
}
