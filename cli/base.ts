// Base for every `distill` command: --json and --verbose flags, one-line errors for user mistakes
// (DistillError), a stack trace only for bugs or with --verbose, and progress rendering on stderr.
import { Command, Flags, Interfaces } from '@oclif/core';
import { DistillError, isDistillError } from '../src/core/errors.js';
import type { ProgressFn } from '../src/core/types.js';
import { createProgress, type ProgressRenderer } from './progress.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    verbose: Flags.boolean({
      description: 'print stack traces and debug detail on errors',
      default: false,
      helpGroup: 'GLOBAL',
    }),
  };

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  private renderer: ProgressRenderer | undefined;

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
  }

  /** A progress callback for src/ functions: bars with rate and ETA on a TTY, throttled lines otherwise, silent with --json. */
  protected progress(): ProgressFn {
    if (!this.renderer) this.renderer = createProgress({ silent: this.jsonEnabled() });
    return this.renderer.update;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    this.renderer?.stop();
    return super.finally(err);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    this.renderer?.stop();
    const verbose = process.argv.includes('--verbose');
    if (isDistillError(err)) {
      if (this.jsonEnabled()) {
        this.logJson({ error: err.toJSON() });
        this.exit(1);
      }
      if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
      // One line, unwrapped, so scripts and people read the whole message (oclif's this.error wraps at 80 columns).
      process.stderr.write(`Error: [${err.code}] ${err.message}\n`);
      this.exit(1);
    }
    if (verbose && err.stack && !(err as any).oclif) process.stderr.write(`${err.stack}\n`);
    return super.catch(err);
  }
}

export { DistillError };
