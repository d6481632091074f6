// Base for every `distill` command: --json and --verbose flags, progress rendering on stderr, and one
// voice for every failure: a user mistake (DistillError, a flag parse error, a file-system error) is one
// line `Error: [CODE] …` with library option fields renamed to this command's flags; a stack trace is
// printed only for bugs or with --verbose.
import os from 'node:os';
import { Command, Flags, Interfaces, toConfiguredId } from '@oclif/core';
import { DistillError, invariant, isDistillError } from '../src/core/errors.js';
import { ioError, isSystemError } from '../src/core/io-errors.js';
import type { ProgressFn } from '../src/core/types.js';
import { closest, fieldFlagMap } from './flags.js';
import { createProgress, type ProgressRenderer } from './progress.js';
import { s3FieldFlags } from './s3-flags.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/** oclif errors carry `oclif.exit`; an ExitError (this.exit) also has code EEXIT and must pass through. */
function isExit(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 'EEXIT';
}

function isOclifError(err: unknown): err is Error & { oclif: { exit?: number }; flags?: string[] } {
  return err instanceof Error && typeof (err as { oclif?: unknown }).oclif === 'object';
}

/** The shell's status for a process ended by a signal: 128 + its number (130 for SIGINT, 143 for SIGTERM). */
function exitCodeOf(sig: NodeJS.Signals): number {
  return 128 + (os.constants.signals[sig] ?? 2);
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    verbose: Flags.boolean({
      description: 'print stack traces and debug detail on errors',
      default: false,
      allowNo: true,
      helpGroup: 'GLOBAL',
    }),
  };

  /**
   * Library option fields that this command's flags feed under another name (clipNorm → clip); a flag
   * `top-k` already covers the field `topK`. Library errors name fields in backticks; they are shown as flags.
   */
  static fieldFlags: Record<string, string> = {};

  private input: { flags: BaseFlags<T>; args: BaseArgs<T> } | undefined;

  /** The parsed flags (init parses them before run). */
  protected get flags(): BaseFlags<T> {
    invariant(this.input, 'flags are read after init');
    return this.input.flags;
  }

  protected get args(): BaseArgs<T> {
    invariant(this.input, 'args are read after init');
    return this.input.args;
  }
  private renderer: ProgressRenderer | undefined;
  private interruption: { controller: AbortController; by?: NodeJS.Signals; off: () => void } | undefined;

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.input = { flags: flags as BaseFlags<T>, args: args as BaseArgs<T> };
  }

  /** A progress callback for src/ functions: bars with rate and ETA on a TTY, throttled lines otherwise, silent with --json. */
  protected progress(): ProgressFn {
    if (!this.renderer) this.renderer = createProgress({ silent: this.jsonEnabled() });
    return this.renderer.update;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    this.renderer?.stop();
    this.interruption?.off();
    return super.finally(err);
  }

  /**
   * An AbortSignal for long work that SIGINT (Ctrl-C) and SIGTERM abort: the work stops at its next safe point
   * and the command says what it kept (see interrupted()). A second signal ends the process at once.
   */
  protected interruptSignal(): AbortSignal {
    if (this.interruption) return this.interruption.controller.signal;
    const controller = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      const state = this.interruption;
      if (!state) return;
      if (state.by) {
        process.stderr.write(
          `Error: [E_INTERRUPTED] ${sig} again: stopped at once, without waiting for a safe point\n`,
        );
        process.exit(exitCodeOf(sig));
      }
      state.by = sig;
      this.renderer?.stop();
      process.stderr.write(`${sig}: stopping at the next safe point (${sig} again stops at once)\n`);
      controller.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const off = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    this.interruption = { controller, off };
    return controller.signal;
  }

  /** The E_INTERRUPTED error for work stopped by a signal: what was kept and how to resume. */
  protected interrupted(kept: string, resume: string): DistillError {
    const by = this.interruption?.by ?? 'SIGINT';
    return new DistillError('E_INTERRUPTED', `interrupted by ${by}: ${kept}`, { hint: resume });
  }

  /** Every flag of this command, base flags included. */
  private allFlags(): Record<string, { allowNo?: boolean; type?: string }> {
    return { ...(this.ctor as typeof BaseCommand).baseFlags, json: {}, ...this.ctor.flags } as Record<
      string,
      { allowNo?: boolean; type?: string }
    >;
  }

  private helpHint(): string {
    const id = this.id ? ` ${toConfiguredId(this.id, this.config)}` : '';
    return `see \`${this.config.bin}${id} --help\``;
  }

  /** The user-mistake view of `err` (a DistillError with flags for fields), or undefined for a bug. */
  protected userError(err: unknown): DistillError | undefined {
    if (isExit(err)) return undefined;
    if (isDistillError(err)) {
      const flags = this.ctor.flags ?? {};
      const map = fieldFlagMap(flags, {
        ...('s3-endpoint' in flags ? s3FieldFlags : {}),
        ...(this.ctor as typeof BaseCommand).fieldFlags,
      });
      return err.renameFields((field) => {
        const flag = map.get(field);
        return flag === undefined ? undefined : `--${flag}`;
      });
    }
    if (isSystemError(err)) {
      const e = ioError(err);
      return isDistillError(e) ? e : undefined;
    }
    if (isOclifError(err)) return this.parseError(err);
    return undefined;
  }

  /** oclif's parse errors (unknown flag, missing flag, bad option value, …) as one E_USAGE line. */
  private parseError(err: Error & { flags?: string[] }): DistillError {
    const flags = this.allFlags();
    const known = Object.entries(flags).flatMap(([name, f]) =>
      f.type === 'boolean' && f.allowNo ? [`--${name}`, `--no-${name}`] : [`--${name}`],
    );
    const lines = err.message
      .replace(ANSI, '')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^See more help with --help$/.test(l) && !/^The following errors? occurred:$/.test(l));
    const hint = this.helpHint();
    if (err.constructor.name === 'NonExistentFlagsError' && err.flags?.length) {
      const unknown = err.flags.map((f) => f.split('=')[0] ?? f);
      const guesses = unknown.map((f) => closest(f, known));
      const first = unknown[0] ?? '';
      const guess = guesses[0];
      return new DistillError('E_USAGE', `unknown flag${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, {
        subject: first,
        hint: guess ? `did you mean ${guess}? (${hint})` : `${hint} for the flags it takes`,
      });
    }
    const missing = lines.flatMap((l) => /^Missing required flag (\S+)$/.exec(l)?.slice(1) ?? []);
    if (missing.length) {
      const list = missing.map((m) => `--${m}`).join(', ');
      return new DistillError('E_USAGE', `missing required flag${missing.length > 1 ? 's' : ''} ${list}`, { hint });
    }
    const option = /^Expected --([\w-]+)=(.*) to be one of: (.*)$/.exec(lines[0] ?? '');
    if (option) {
      const [, name = '', value = '', choices = ''] = option;
      const guess = closest(value, choices.split(', '));
      return new DistillError('E_USAGE', `invalid --${name}`, {
        expected: `one of ${choices}`,
        found: JSON.stringify(value),
        ...(guess ? { hint: `did you mean ${guess}?` } : { hint }),
      });
    }
    const missingArg = /^Missing (\d+) required args?:?$/.exec(lines[0] ?? '');
    if (missingArg) {
      const names = lines.slice(1).map((l) => `<${l.split(/\s+/)[0]}>`);
      return new DistillError('E_USAGE', `missing required argument ${names.join(', ')}`.trim(), { hint });
    }
    const unexpected = /^Unexpected arguments?: (.*)$/.exec(lines[0] ?? '');
    if (unexpected) return new DistillError('E_USAGE', `unexpected argument ${unexpected[1]}`, { hint });
    const parsing = /^Parsing --([\w-]+)$/.exec(lines[0] ?? '');
    const text = (parsing ? lines.slice(1) : lines).join('; ').replace(/\s+/g, ' ');
    return new DistillError('E_USAGE', parsing ? `--${parsing[1]}: ${text}` : text || 'invalid command line', {
      hint,
    });
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    this.renderer?.stop();
    const verbose = process.argv.includes('--verbose') || this.argv.includes('--verbose');
    const user = this.userError(err);
    if (user) {
      if (this.jsonEnabled()) {
        this.logJson({ error: user.toJSON() });
        this.exit(user.code === 'E_INTERRUPTED' ? exitCodeOf(this.interruption?.by ?? 'SIGINT') : 1);
      }
      if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
      // One line, unwrapped, so scripts and people read the whole message (oclif's this.error wraps at 80 columns).
      process.stderr.write(`Error: [${user.code}] ${user.message}\n`);
      this.exit(user.code === 'E_INTERRUPTED' ? exitCodeOf(this.interruption?.by ?? 'SIGINT') : 1);
    }
    if (verbose && err.stack && !isOclifError(err)) process.stderr.write(`${err.stack}\n`);
    return super.catch(err);
  }
}

export { DistillError };
