// Blob stores by URL scheme: a plain path or file:// (local disk) and s3://bucket/prefix. Keys are
// '/'-separated paths under the store's root; put-if-absent is the only primitive the commit protocol needs.
import { createHash } from 'node:crypto';
import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DistillError } from '../core/errors.js';
import type { S3Options } from './api.js';

export interface BlobInfo {
  key: string;
  size: number;
  modified: Date;
}

export interface BlobStore {
  /** The root as the user wrote it, for messages. */
  readonly uri: string;
  /** The full location of one key, for messages. */
  describe(key: string): string;
  /** The object's bytes; a local store reads them into `alloc(size)` when given (a recycled buffer). */
  get(key: string, alloc?: (size: number) => Uint8Array): Promise<Uint8Array | null>;
  head(key: string): Promise<{ size: number } | null>;
  /** Writes `data` only when nothing exists at `key`; true when this call created it. */
  putIfAbsent(key: string, data: Uint8Array): Promise<boolean>;
  /** Overwriting write, for outputs that are not part of a commit protocol (exports). */
  put(key: string, data: Uint8Array): Promise<void>;
  /** Uploads a finished local file to `key` (multipart where the store has it). */
  putFile(key: string, file: string, size: number): Promise<void>;
  /** Where a key lives on local disk, when the store is local (lets writers stream straight into place). */
  localPath(key: string): string | null;
  list(prefix: string): Promise<BlobInfo[]>;
  delete(key: string): Promise<void>;
  /** Unfinished multipart uploads under `prefix` (S3 only; local stores have none). */
  staleUploads(prefix: string): Promise<Array<{ key: string; uploadId: string; initiated: Date }>>;
  abortUpload(key: string, uploadId: string): Promise<void>;
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

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

export class LocalBlobStore implements BlobStore {
  constructor(
    readonly uri: string,
    readonly root: string,
  ) {}

  describe(key: string): string {
    return path.join(this.root, key);
  }

  localPath(key: string): string {
    return path.join(this.root, ...key.split('/'));
  }

  async get(key: string, alloc?: (size: number) => Uint8Array): Promise<Uint8Array | null> {
    // One read of the whole file: fsp.readFile reads in 512 KiB chunks, several times slower on shards.
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(this.localPath(key), 'r');
      const { size } = await fh.stat();
      const buf = alloc ? alloc(size).subarray(0, size) : Buffer.allocUnsafeSlow(size);
      let off = 0;
      while (off < size) {
        const { bytesRead } = await fh.read(buf, off, size - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return off === size ? buf : buf.subarray(0, off);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw ioError('read', this.describe(key), err);
    } finally {
      await fh?.close();
    }
  }

  async head(key: string): Promise<{ size: number } | null> {
    try {
      const st = await fsp.stat(this.localPath(key));
      return st.isFile() ? { size: st.size } : null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw ioError('stat', this.describe(key), err);
    }
  }

  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    // Write a private temp file, then link(2) it into place: link fails with EEXIST when the key
    // exists (rename would overwrite), and readers never see a half-written commit record.
    const dest = this.localPath(key);
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await fsp.writeFile(tmp, data, { flag: 'wx' });
      await fsp.link(tmp, dest);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw ioError('write', this.describe(key), err);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const dest = this.localPath(key);
    try {
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      const tmp = `${dest}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, data);
      await fsp.rename(tmp, dest);
    } catch (err) {
      throw ioError('write', this.describe(key), err);
    }
  }

  async putFile(key: string, file: string): Promise<void> {
    const dest = this.localPath(key);
    if (path.resolve(file) === dest) return;
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await fsp.copyFile(file, dest, fsc.COPYFILE_EXCL).catch((err) => {
      throw ioError('write', this.describe(key), err);
    });
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err)) return;
        throw ioError('list', dir, err);
      }
      for (const e of entries) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(path.join(dir, e.name), r);
        else if (e.isFile() && r.startsWith(prefix)) {
          const st = await fsp.stat(path.join(dir, e.name));
          out.push({ key: r, size: st.size, modified: st.mtime });
        }
      }
    };
    const top = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(top ? this.localPath(top) : this.root, top);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await fsp.rm(this.localPath(key), { force: true });
  }

  async staleUploads(): Promise<Array<{ key: string; uploadId: string; initiated: Date }>> {
    return [];
  }

  async abortUpload(): Promise<void> {}
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function ioError(op: string, where: string, err: unknown): DistillError {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'EACCES' || code === 'EPERM') {
    return new DistillError('E_STORE_DENIED', `permission denied to ${op} ${where}`, {
      subject: where,
      hint: 'check the directory permissions',
      cause: err,
    });
  }
  return new DistillError('E_IO', `cannot ${op} ${where}`, {
    found: String((err as Error)?.message ?? err),
    subject: where,
    cause: err,
  });
}
