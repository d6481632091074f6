// Errors across a thread or process boundary: structured clone keeps no class, so a DistillError travels as
// its code, message and details and is rebuilt on the other side with its one-line message verbatim.
import { DistillError, ErrorCodes, type DistillErrorDetails, type ErrorCode } from '../../core/errors.js';
import { ioError } from '../../core/io-errors.js';

/** An error as it crosses a thread or process boundary (structured clone keeps no class). */
export interface WireError {
  name?: string;
  message?: string;
  code?: string;
  /** A DistillError's summary, so that the other side can rebuild (and rename the fields of) its message. */
  summary?: string;
  details?: DistillErrorDetails;
}

export function toWireError(e: unknown): WireError {
  // A file-system failure (a full disk, a read-only folder) crosses as the DistillError it means.
  const err = (ioError(e) ?? {}) as WireError;
  return {
    name: err.name,
    message: err.message ?? String(e),
    code: err.code,
    summary: err.summary,
    details: err.details ? { ...err.details, cause: undefined } : undefined,
  };
}

/** Rebuilds a DistillError (its one-line message kept verbatim: it already holds expected/got/hint). */
export function fromWireError(e: WireError | undefined, where?: string): Error {
  if (e?.code && (ErrorCodes as readonly string[]).includes(e.code)) {
    const err = new DistillError(e.code as ErrorCode, e.summary ?? '', e.details ?? {});
    if (e.summary === undefined) err.message = e.message ?? '';
    return err;
  }
  const msg = e?.message ?? String(e);
  return new Error(where ? `${where}: ${msg}` : msg);
}
