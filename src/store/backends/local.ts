// The local-disk blob store (a plain path or file:// URI): put-if-absent by link(2) of a private temp file, so a
// commit never overwrites another and readers never see a half-written one.
import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../../core/errors.js';
import { ioError as systemError } from '../../core/io-errors.js';
import { makeDir } from '../files.js';
import { byKey, type BlobInfo, type BlobStore, type StaleUpload } from './blob-store.js';

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
    // One read of the whole file: fsp.readFile reads in 512 KiB chunks, each a separate trip through the libuv
    // thread pool, which adds up on shards of megabytes.
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
    makeDir(path.dirname(dest));
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
      makeDir(path.dirname(dest));
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
    makeDir(path.dirname(dest));
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
    return out.sort(byKey);
  }

  async delete(key: string): Promise<void> {
    await fsp.rm(this.localPath(key), { force: true });
  }

  async staleUploads(): Promise<StaleUpload[]> {
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
  const mapped = systemError(err, op, where);
  if (mapped instanceof DistillError) return mapped;
  return new DistillError('E_IO', `cannot ${op} ${where}`, {
    found: String((err as Error)?.message ?? err),
    subject: where,
    cause: err,
  });
}
