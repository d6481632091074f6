// `distill cache verify <uri>`: checks every shard (size, SHA-256, Arrow footer, schema, rows); exit status 1 names each bad shard.
import { Args } from '@oclif/core';
import { verifyCache, type VerifyResult } from '../../../src/store/index.js';
import { BaseCommand } from '../../base.js';
import { s3Flags, s3Options } from '../../s3-flags.js';

export default class CacheVerify extends BaseCommand<typeof CacheVerify> {
  static override description = 'Fully check a logit cache; exits 1 naming each bad shard and why';
  static override examples = [
    '<%= config.bin %> cache verify ./cache',
    '<%= config.bin %> cache verify s3://bucket/run1 --json',
  ];
  static override args = {
    uri: Args.string({ description: 'cache directory, file:// URL or s3://bucket/prefix', required: true }),
  };
  static override flags = { ...s3Flags };

  async run(): Promise<VerifyResult> {
    const r = await verifyCache(this.args.uri, { s3: s3Options(this.flags), progress: this.progress() });
    if (r.ok) this.log(`ok: ${r.shards} shards, ${r.rows} rows, ${r.bytes} bytes verified`);
    else {
      for (const b of r.bad) this.logToStderr(`bad shard ${b.shard} (${b.key}): ${b.reason}`);
      this.logToStderr(`${r.bad.length} of ${r.shards} shards are bad`);
      process.exitCode = 1;
    }
    return r;
  }
}
