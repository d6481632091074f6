// `distill cache export <uri> --format parquet --out <uri>`: the same rows, decoded, as one Parquet file per shard;
// `--format axolotl --data tokens.arrow`: one row per sequence in the columns axolotl's KD plugin trains on.
import { Args, Flags } from '@oclif/core';
import { exportAxolotl, type AxolotlExportResult } from '../../../src/data/index.js';
import { exportParquet, type ExportResult } from '../../../src/store/index.js';
import { BaseCommand, DistillError } from '../../base.js';
import { s3Flags, s3Options } from '../../s3-flags.js';

export default class CacheExport extends BaseCommand<typeof CacheExport> {
  static override description =
    'Export a logit cache as Parquet: one file per shard, rows as in the cache (parquet) or one row per sequence in axolotl’s knowledge-distillation columns (axolotl)';
  static override examples = [
    '<%= config.bin %> cache export ./cache --format parquet --out ./cache-parquet',
    '<%= config.bin %> cache export ./cache --format axolotl --data tokens.arrow --out ./kd-dataset',
  ];
  static override args = {
    uri: Args.string({ description: 'cache directory, file:// URL or s3://bucket/prefix', required: true }),
  };
  static override flags = {
    format: Flags.string({ description: 'output format', options: ['parquet', 'axolotl'], default: 'parquet' }),
    out: Flags.string({ description: 'output directory or s3://bucket/prefix', required: true }),
    data: Flags.string({ description: 'with --format axolotl: the token dataset the cache was made from' }),
    ...s3Flags,
  };

  async run(): Promise<ExportResult | AxolotlExportResult> {
    const f = this.flags;
    if (f.format === 'axolotl') {
      if (f.data === undefined)
        throw new DistillError('E_USAGE', '--format axolotl needs --data', {
          expected: '--data <tokens.arrow>: the token dataset the cache was made from (its tokens become input_ids)',
        });
      const r = await exportAxolotl({
        cache: this.args.uri,
        data: f.data,
        out: f.out,
        s3: s3Options(f),
        progress: this.progress(),
      });
      this.log(
        `wrote ${r.files.length} Parquet files (${r.sequences} sequences, ${r.scoredPositions} scored positions, k=${r.k}, temperature ${r.temperature}) to ${r.out}`,
      );
      return r;
    }
    const r = await exportParquet(this.args.uri, f.out, { s3: s3Options(f), progress: this.progress() });
    this.log(`wrote ${r.files.length} Parquet files (${r.rows} rows, ${r.bytes} bytes) to ${r.out}`);
    return r;
  }
}
