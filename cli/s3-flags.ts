// S3 connection flags shared by every command that reads or writes an s3:// URI (cache commands,
// teacher run, student train, eval); anything unset falls back to the standard AWS environment variables.
import { Flags } from '@oclif/core';
import type { S3Options } from '../src/store/index.js';

export const s3Flags = {
  's3-endpoint': Flags.string({
    description: 'S3-compatible endpoint URL (default: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)',
    helpGroup: 'S3',
  }),
  's3-region': Flags.string({ description: 'S3 region (default: AWS_REGION, else us-east-1)', helpGroup: 'S3' }),
  's3-path-style': Flags.boolean({
    description: 'path-style bucket addressing (default: on when an endpoint is set)',
    allowNo: true,
    helpGroup: 'S3',
  }),
  's3-checksums': Flags.string({
    description: 'request checksums: WHEN_REQUIRED suits servers that reject the newer default',
    options: ['WHEN_SUPPORTED', 'WHEN_REQUIRED'],
    helpGroup: 'S3',
  }),
};

/** The S3Options fields behind the flags, so that library errors naming `s3.endpoint` show --s3-endpoint. */
export const s3FieldFlags: Record<string, string> = {
  's3.endpoint': 's3-endpoint',
  's3.region': 's3-region',
  's3.forcePathStyle': 's3-path-style',
  's3.checksums': 's3-checksums',
};

export function s3Options(flags: {
  's3-endpoint'?: string;
  's3-region'?: string;
  's3-path-style'?: boolean;
  's3-checksums'?: string;
}): S3Options {
  return {
    endpoint: flags['s3-endpoint'],
    region: flags['s3-region'],
    forcePathStyle: flags['s3-path-style'],
    checksums: flags['s3-checksums'] as S3Options['checksums'],
  };
}
