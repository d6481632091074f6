// `distill cache inspect <uri>`: teacher, tokenizer, vocabulary, k, encodings, shards, rows, bytes per position, fingerprint.
import { Args } from '@oclif/core';
import { inspectCache, type InspectResult } from '../../../src/store/index.js';
import { BaseCommand } from '../../base.js';
import { s3Flags, s3Options } from '../../s3-flags.js';

export default class CacheInspect extends BaseCommand<typeof CacheInspect> {
  static override description = 'Summarize a finalized logit cache from its manifest';
  static override examples = [
    '<%= config.bin %> cache inspect ./cache',
    '<%= config.bin %> cache inspect s3://bucket/run1 --json',
  ];
  static override args = {
    uri: Args.string({ description: 'cache directory, file:// URL or s3://bucket/prefix', required: true }),
  };
  static override flags = { ...s3Flags };

  async run(): Promise<InspectResult> {
    const r = await inspectCache(this.args.uri, { s3: s3Options(this.flags) });
    this.log(`cache ${r.uri} (format v${r.formatVersion})`);
    this.log(`  teacher     ${r.teacher.name} (sha256 ${r.teacher.sha256.slice(0, 12)}…)`);
    this.log(`  tokenizer   ${r.tokenizer.name} (sha256 ${r.tokenizer.sha256.slice(0, 12)}…)`);
    this.log(
      `  dataset     ${r.dataset.sequences} sequences × ${r.dataset.seqLen} (sha256 ${r.dataset.sha256.slice(0, 12)}…)`,
    );
    this.log(
      `  vocabulary  ${r.vocabSize}, k ${r.k}, temperature ${r.temperature}${r.samples ? `, ${r.samples} samples` : ''}`,
    );
    this.log(`  encodings   ids ${r.encodings.ids}, logp ${r.encodings.logp}, compression ${r.encodings.compression}`);
    this.log(
      `  shards      ${r.shards}, rows ${r.rows}, ${r.bytes} bytes, ${r.bytesPerPosition.toFixed(1)} bytes/position`,
    );
    this.log(`  fingerprint ${r.fingerprint}`);
    return r;
  }
}
