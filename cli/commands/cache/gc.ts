// `distill cache gc <uri>`: lists (dry run, the default) or removes orphaned shard attempts and stale multipart uploads.
import { Args, Flags } from '@oclif/core';
import { gcCache, type GcResult } from '../../../src/store/index.js';
import { BaseCommand } from '../../base.js';
import { intFlag } from '../../flags.js';
import { s3Flags, s3Options } from '../../s3-flags.js';

export default class CacheGc extends BaseCommand<typeof CacheGc> {
  static override description = 'Remove orphaned shard attempts and stale multipart uploads (dry run unless --delete)';
  static override examples = [
    '<%= config.bin %> cache gc ./cache',
    '<%= config.bin %> cache gc s3://bucket/run1 --delete',
  ];
  static override args = {
    uri: Args.string({ description: 'cache directory, file:// URL or s3://bucket/prefix', required: true }),
  };
  static override flags = {
    delete: Flags.boolean({
      description: 'actually delete (default: only list what would go)',
      default: false,
      allowNo: true,
    }),
    'min-age': intFlag({
      description: 'minutes an uncommitted attempt or upload must be idle before it counts as orphaned',
      default: 60,
      min: 0,
    }),
    ...s3Flags,
  };

  async run(): Promise<GcResult> {
    const r = await gcCache(this.args.uri, {
      dryRun: !this.flags.delete,
      minAgeMs: this.flags['min-age'] * 60_000,
      s3: s3Options(this.flags),
    });
    const verb = r.dryRun ? 'would remove' : 'removed';
    for (const o of r.orphans) this.log(`${verb} ${o.key} (${o.bytes} bytes): ${o.reason}`);
    for (const u of r.uploads)
      this.log(
        `${r.dryRun ? 'would abort' : 'aborted'} multipart upload ${u.uploadId} of ${u.key} (started ${u.initiated})`,
      );
    this.log(
      `${verb} ${r.orphans.length} objects (${r.freedBytes} bytes) and ${r.uploads.length} uploads${r.dryRun ? '; pass --delete to do it' : ''}`,
    );
    return r;
  }
}
