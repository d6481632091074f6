// `npm run bench`: lists the benchmarks (bench/*.ts whose header says how to run it) and runs them one at a
// time, never in parallel (each measures the whole machine). `npm run bench -- <name> [args…]` runs one,
// `npm run bench -- all [args…]` runs each in turn; the arguments go to every benchmark run.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

/** Benchmarks: bench/<name>.ts files whose opening comment gives their own command line. */
function benchmarks() {
  return readdirSync(here)
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((f) => {
      const name = f.replace(/\.ts$/, '');
      const header = readFileSync(path.join(here, f), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('//'))
        .map((l) => l.replace(/^\/\/ ?/, ''));
      const usage = header.find((l) => l.includes(`bench/${f}`));
      return usage ? { name, about: header[0] ?? '', usage, build: /npm run build:ts/.test(usage) } : undefined;
    })
    .filter((b) => b !== undefined);
}

function run(cmd, args) {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  return res.status ?? 1;
}

const all = benchmarks();
const [which, ...rest] = process.argv.slice(2);
if (!which || which === '--help' || which === 'list') {
  console.log('Benchmarks (each prints a table; --record rewrites its section of docs/benchmarks.md):\n');
  for (const b of all) console.log(`  ${b.name.padEnd(12)} ${b.about}\n  ${''.padEnd(12)} ${b.usage.trim()}\n`);
  console.log('Run one: npm run bench -- <name> [args…]; all in turn: npm run bench -- all [args…]');
  process.exit(0);
}
const chosen = which === 'all' ? all : all.filter((b) => b.name === which);
if (!chosen.length) {
  console.error(
    `Error: [E_USAGE] unknown benchmark "${which}": expected one of ${all.map((b) => b.name).join(', ')}, or all`,
  );
  process.exit(1);
}
if (chosen.some((b) => b.build) && run('npm', ['run', 'build:ts']) !== 0) process.exit(1);
let failed = 0;
for (const b of chosen) {
  console.log(`\n== bench/${b.name}.ts ${rest.join(' ')}`);
  const status = run(process.execPath, ['--import', 'tsx', path.join('bench', `${b.name}.ts`), ...rest]);
  if (status !== 0) {
    console.error(`bench/${b.name}.ts exited with status ${status}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
