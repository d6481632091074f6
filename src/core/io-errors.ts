// File-system failures as DistillErrors: a Node system error (EACCES, EROFS, ENOTDIR, ENOSPC, EDQUOT, …)
// becomes E_IO naming what was being done, to which path, why in words, and what to do about it.
import { DistillError, isDistillError } from './errors.js';

/** Why each errno failed, in words, and what the user can do. */
const REASONS: Record<string, { why: string; hint: string }> = {
  EACCES: { why: 'permission denied', hint: 'choose a location you can write to, or fix its permissions' },
  EPERM: { why: 'operation not permitted', hint: 'choose a location you can write to, or fix its permissions' },
  EROFS: { why: 'the file system is read-only', hint: 'choose a location on a writable file system' },
  ENOTDIR: {
    why: 'a part of the path is a file, not a folder',
    hint: 'choose a path whose parent folders are folders (or remove the file in the way)',
  },
  EISDIR: { why: 'it is a folder, not a file', hint: 'name a file inside it instead' },
  ENOSPC: {
    why: 'no space left on the device',
    hint: 'free some space or choose a location on another disk, then run the command again',
  },
  EDQUOT: {
    why: 'the disk quota is exhausted',
    hint: 'free some of your quota or choose a location on another disk, then run the command again',
  },
  ENOENT: { why: 'no such file or folder', hint: 'check the path' },
  EEXIST: { why: 'it already exists', hint: 'remove it or choose another path' },
  ENAMETOOLONG: { why: 'the path is too long', hint: 'choose a shorter path' },
  EMFILE: { why: 'too many open files', hint: 'raise the open-file limit (ulimit -n) or use fewer workers' },
  ENFILE: { why: 'too many open files on the system', hint: 'close other programs or raise the system limit' },
  EINVAL: {
    why: 'the file system refused the operation',
    hint: 'choose a location on an ordinary disk (not /proc, /sys or a special file system)',
  },
  EIO: { why: 'an input/output error on the device', hint: 'check the disk, or choose a location on another one' },
  EBUSY: { why: 'the file or device is busy', hint: 'close what holds it, or choose another path' },
  ETXTBSY: { why: 'the file is busy', hint: 'close what holds it, or choose another path' },
  EFBIG: { why: 'the file is too large for this file system', hint: 'choose a location on another file system' },
};

/** The failed system call, in words (for errors raised without a described action). */
const SYSCALLS: Record<string, string> = {
  open: 'open',
  mkdir: 'create the folder',
  write: 'write',
  read: 'read',
  rename: 'rename',
  unlink: 'remove',
  rmdir: 'remove',
  rm: 'remove',
  scandir: 'list',
  stat: 'read',
  lstat: 'read',
  link: 'link',
  copyfile: 'copy',
  access: 'access',
  ftruncate: 'truncate',
  fsync: 'sync',
  close: 'close',
};

/** A Node system error carries a string errno code such as EACCES. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).code === 'string' &&
    /^E[A-Z0-9]+$/.test((err as NodeJS.ErrnoException).code as string)
  );
}

/** True for the errors of a full disk or an exhausted quota. */
export function isOutOfSpace(err: unknown): boolean {
  return isSystemError(err) && (err.code === 'ENOSPC' || err.code === 'EDQUOT');
}

/**
 * `err` as a DistillError: DistillErrors pass through; a system error becomes E_IO "cannot <action>
 * <target>: <why>"; anything else is returned unchanged (a bug, which keeps its stack).
 */
export function ioError(err: unknown, action?: string, target?: string): unknown {
  if (isDistillError(err) || !isSystemError(err)) return err;
  action ??= (err.syscall && SYSCALLS[err.syscall]) ?? 'use';
  const what = target ?? err.path ?? '';
  const r = REASONS[err.code] ?? { why: err.message.replace(/^[A-Z0-9]+: /, ''), hint: 'check the path and the disk' };
  return new DistillError('E_IO', `cannot ${action}${what ? ` ${what}` : ''}: ${r.why} (${err.code})`, {
    subject: what || undefined,
    hint: r.hint,
    cause: err,
  });
}

/** Runs `fn`, turning a system error into a DistillError (see ioError). */
export async function withIoErrors<T>(action: string, target: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw ioError(err, action, target);
  }
}
