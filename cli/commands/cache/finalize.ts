// `distill cache finalize <uri>`: writes manifest.json once every shard has a commit record.
import { Args } from '@oclif/core';
import { finalizeCache, type Manifest } from '../../../src/store/index.js';
import { BaseCommand } from '../../base.js';
import { s3Flags, s3Options } from '../../s3-flags.js';

interface FinalizeResult {
  uri: string;
  fingerprint: string;
  shards: number;
  rows: number;
  bytes: number;
}

export default class CacheFinalize extends BaseCommand<typeof CacheFinalize> {
  static override description =
    'Write the manifest of a cache whose every shard is committed (fails naming the missing shards)';
  static override examples = ['<%= config.bin %> cache finalize s3://bucket/run1'];
  static override args = {
    uri: Args.string({ description: 'cache directory, file:// URL or s3://bucket/prefix', required: true }),
  };
  static override flags = { ...s3Flags };

  async run(): Promise<FinalizeResult> {
    const m: Manifest = await finalizeCache(this.args.uri, { s3: s3Options(this.flags) });
    this.log(`finalized ${this.args.uri}: ${m.numShards} shards, ${m.rows} rows, fingerprint ${m.fingerprint}`);
    return { uri: this.args.uri, fingerprint: m.fingerprint, shards: m.numShards, rows: m.rows, bytes: m.bytes };
  }
}
