// Opens the blob store a URI names: a plain path or file:// (local disk), s3://bucket/prefix (S3, whose SDK is
// loaded only when an s3:// URI is opened).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DistillError } from '../../core/errors.js';
import type { S3Options } from '../api.js';
import type { BlobStore } from './blob-store.js';
import { LocalBlobStore } from './local.js';

/** Opens the store a URI names: s3://bucket/prefix, file:///abs/dir, or a plain path. */
export async function openStore(uri: string, s3?: S3Options): Promise<BlobStore> {
  if (/^s3:\/\//i.test(uri)) {
    const { S3BlobStore } = await import('./s3.js');
    return S3BlobStore.open(uri, s3);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !/^file:\/\//i.test(uri)) {
    const scheme = uri.slice(0, uri.indexOf(':'));
    throw new DistillError('E_USAGE', `unsupported store scheme "${scheme}://" in ${uri}`, {
      expected: 'a local path, file:///dir or s3://bucket/prefix',
      found: uri,
      subject: uri,
    });
  }
  const root = /^file:\/\//i.test(uri) ? fileURLToPath(uri) : path.resolve(uri);
  return new LocalBlobStore(uri, root);
}
