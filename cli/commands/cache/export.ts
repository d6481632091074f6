// `distill cache export <uri> --format parquet --out <uri>`: the same rows, decoded, as one Parquet file per shard.
import { Args, Flags } from '@oclif/core';
import { exportParquet, type ExportResult } from '../../../src/store/index.js';
import { BaseCommand } from '../../base.js';
import { s3Flags, s3Options } from '../../s3-flags.js';

export default class CacheExport extends BaseCommand<typeof CacheExport> {
  static override description =
    'Export a logit cache as Parquet (one file per shard; ids and dequantized logp as lists)';
  static override examples = ['<%= config.bin %> cache export ./cache --format parquet --out ./cache-parquet'];
  static override args = {
    uri: Args.string({ description: 'cache directory, file:// URL or s3://bucket/prefix', required: true }),
  };
  static override flags = {
    format: Flags.string({ description: 'output format', options: ['parquet'], default: 'parquet' }),
    out: Flags.string({ description: 'output directory or s3://bucket/prefix', required: true }),
    ...s3Flags,
  };

  async run(): Promise<ExportResult> {
    const r = await exportParquet(this.args.uri, this.flags.out, {
      s3: s3Options(this.flags),
      progress: this.progress(),
    });
    this.log(`wrote ${r.files.length} Parquet files (${r.rows} rows, ${r.bytes} bytes) to ${r.out}`);
    return r;
  }
}
