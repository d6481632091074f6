// Local files written by every command: folders made one level at a time (Node's recursive mkdir spins
// forever under /proc, where mkdir answers ENOENT below an existing folder), and whole-file writes through
// a temporary name, with file-system failures as one-line E_IO errors (src/core/io-errors.ts).
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DistillError, isDistillError } from '../core/errors.js';
import { ioError } from '../core/io-errors.js';

const codeOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code;

/**
 * Creates `dir` and its missing parents. Unlike mkdirSync(recursive), it ends on every file system:
 * a parent that is a file, or a folder that refuses children (procfs, sysfs), is an E_IO error.
 */
export function makeDir(dir: string): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  let cur = abs;
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(cur).isDirectory();
    } catch (err) {
      const code = codeOf(err);
      const parent = path.dirname(cur);
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== cur) {
        missing.push(cur);
        cur = parent;
        continue;
      }
      throw ioError(err, 'create the folder', abs);
    }
    if (!isDir) {
      throw new DistillError('E_IO', `cannot create the folder ${abs}: ${cur} is a file, not a folder (ENOTDIR)`, {
        subject: abs,
        hint: 'choose a path whose parent folders are folders (or remove the file in the way)',
      });
    }
    break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (err) {
      if (codeOf(err) === 'EEXIST' && statSync(d).isDirectory()) continue;
      if (codeOf(err) === 'ENOENT') {
        // The parent exists (it was just checked or made) and still refuses a child: a special file system.
        throw new DistillError(
          'E_IO',
          `cannot create the folder ${abs}: ${path.dirname(d)} does not take new folders`,
          {
            subject: abs,
            hint: 'choose a location on an ordinary disk (not /proc, /sys or a special file system)',
            cause: err,
          },
        );
      }
      throw ioError(err, 'create the folder', d);
    }
  }
}

/**
 * Writes `data` to `file` through `<file>.tmp-<pid>` and a rename, so a failed write (a full disk, a
 * read-only folder) leaves no file that looks whole; the parent folder is created if missing.
 */
export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    makeDir(path.dirname(file));
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // The write's own error says more than a failed clean-up.
    }
    if (isDistillError(err)) throw err;
    throw ioError(err, 'write', file);
  }
}
