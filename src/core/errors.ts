// DistillError: every user-facing failure carries a stable code, what was expected, what was found,
// and what to do. The CLI prints `message` (one line) without a stack unless --verbose.

/** Stable error codes. Append only: scripts and tests match on them. */
export const ErrorCodes = [
  'E_USAGE',
  'E_CONFIG',
  'E_NOT_FOUND',
  'E_IO',
  'E_NATIVE_LOAD',
  'E_NATIVE_ARGUMENT',
  'E_NON_FINITE',
  'E_UNSUPPORTED',
  'E_REGISTRY_UNKNOWN',
  'E_REGISTRY_DUPLICATE',
  'E_PARAMS',
  'E_CACHE_FORMAT',
  'E_CACHE_INTEGRITY',
  'E_CACHE_INCOMPLETE',
  'E_CACHE_VERSION',
  'E_FINGERPRINT_MISMATCH',
  'E_STORE_UNREACHABLE',
  'E_STORE_DENIED',
  'E_STORE_CONFLICT',
  'E_DATA',
  'E_TOKENIZER',
  'E_MODEL',
  'E_DEVICE',
  'E_SCHEDULE',
  'E_PLUGIN',
  'E_TRAIN',
  'E_CHECKPOINT',
  'E_EVAL',
  'E_INTERRUPTED',
  'E_MEMORY',
] as const;

export type ErrorCode = (typeof ErrorCodes)[number];

export interface DistillErrorDetails {
  /** What the input should have been. */
  expected?: string;
  /** What was actually found. */
  found?: string;
  /** What the user can do about it. */
  hint?: string;
  /** The object (file, shard, key, plugin) the error is about. */
  subject?: string;
  /**
   * The option field the error is about, as the library's options name it (`topK`, `s3.endpoint`).
   * Messages write option fields in backticks (`topK`) so that a front end can rename them (the CLI
   * shows --top-k); see renameFields.
   */
  field?: string;
  cause?: unknown;
}

/** An option field written in backticks inside a message: `topK`, `s3.endpoint`, `students[].lr`. */
const FIELD_REF = /`([A-Za-z_$][\w$]*(?:\[\])?(?:\.[A-Za-z_$][\w$]*(?:\[\])?)*)`/g;

export class DistillError extends Error {
  readonly code: ErrorCode;
  /** The first part of the message, before the expected/found/hint details. */
  readonly summary: string;
  readonly details: DistillErrorDetails;

  constructor(code: ErrorCode, summary: string, details: DistillErrorDetails = {}) {
    super(DistillError.format(summary, details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DistillError';
    this.code = code;
    this.summary = summary;
    this.details = details;
  }

  /**
   * The same error with the option fields its text names in backticks renamed by `rename` (fields it
   * returns undefined for keep their backticked name). The stack is kept.
   */
  renameFields(rename: (field: string) => string | undefined): DistillError {
    const sub = (text: string | undefined): string | undefined =>
      text?.replace(FIELD_REF, (whole, name: string) => rename(name) ?? whole);
    const d = this.details;
    const renamed = new DistillError(this.code, sub(this.summary) ?? this.summary, {
      ...d,
      ...(d.expected !== undefined ? { expected: sub(d.expected) } : {}),
      ...(d.found !== undefined ? { found: sub(d.found) } : {}),
      ...(d.hint !== undefined ? { hint: sub(d.hint) } : {}),
      ...(d.subject !== undefined ? { subject: sub(d.subject) } : {}),
    });
    // An error rebuilt from its message alone (no summary: it crossed a process boundary) is renamed as it stands.
    if (this.summary === '') renamed.message = sub(this.message) ?? '';
    if (this.stack) renamed.stack = this.stack;
    return renamed;
  }

  /** "summary: expected X, got Y. hint" on one line. */
  static format(summary: string, d: DistillErrorDetails): string {
    let msg = summary;
    const parts: string[] = [];
    if (d.expected !== undefined) parts.push(`expected ${d.expected}`);
    if (d.found !== undefined) parts.push(`got ${d.found}`);
    if (parts.length) msg += `: ${parts.join(', ')}`;
    if (d.hint) msg += `. ${d.hint}`;
    return msg.replace(/\s*\n\s*/g, ' ');
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.details, cause: undefined };
  }
}

export function isDistillError(err: unknown): err is DistillError {
  return err instanceof DistillError;
}

/** Internal invariant check; failures are bugs, not user mistakes. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`internal invariant violated: ${message}`);
}
