// The benchmarks' command lines: node's parseArgs (strict) over the options a benchmark declares, plus `--help`,
// which prints the benchmark's opening comment (what it measures, how to run it). A mistyped or malformed option
// ends the run before it measures anything, with the option named, the usage line and exit status 2: not a stack
// trace, and not a typo such as `--recrod` silently ignored after minutes of measuring.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';

const NUMBERS = /^-?\d+(\.\d+)?(e-?\d+)?(,-?\d+(\.\d+)?(e-?\d+)?)*$/i;

/** The opening `//` comment block of a benchmark's source file, without the comment markers. */
export function benchHeader(file: string): string[] {
  const lines: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('//')) break;
    lines.push(line.replace(/^\/\/ ?/, ''));
  }
  return lines;
}

/**
 * The options of the benchmark at `moduleUrl` (its `import.meta.url`) parsed from process.argv: `--help` prints its
 * header and exits 0; an unknown option, a missing value or a positional argument prints what was wrong and the
 * usage line, and exits 2. An option whose default is a number takes a number; `numeric` names those that do without
 * a default (their default depends on other options).
 */
export function benchArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  moduleUrl: string,
  options: T,
  numeric: string[] = [],
): ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: false }>>['values'] {
  const file = fileURLToPath(moduleUrl);
  const name = `bench/${path.basename(file)}`;
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(benchHeader(file).join('\n'));
    process.exit(0);
  }
  try {
    const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
    // An option whose default is a number (or a list of them, as `--threads 1,2`) takes the same form.
    for (const [key, spec] of Object.entries(options)) {
      const given = (values as Record<string, unknown>)[key];
      const isNumber = numeric.includes(key) || (typeof spec.default === 'string' && NUMBERS.test(spec.default));
      if (isNumber && typeof given === 'string' && !NUMBERS.test(given))
        throw new Error(
          `Option '--${key}' expects a number${typeof spec.default === 'string' ? `${spec.default.includes(',') ? ' or a comma-separated list of numbers' : ''} (default ${spec.default})` : ''}, got '${given}'`,
        );
    }
    return values;
  } catch (err) {
    const header = benchHeader(file);
    const start = header.findIndex((l) => l.includes(name));
    console.error(`${name}: ${(err as Error).message}`);
    if (start >= 0) {
      // The usage line and the lines that continue it (indented, or the next line of the same sentence).
      const first = header[start]!;
      const from = first.search(/\b(Usage|Run):/);
      const usage = [from > 0 ? first.slice(from) : first];
      for (const l of header.slice(start + 1)) {
        if (!/^\s/.test(l)) break;
        usage.push(l);
      }
      console.error(usage.join('\n'));
    }
    console.error(`(npx tsx ${name} --help for what it measures and every option)`);
    process.exit(2);
  }
}
