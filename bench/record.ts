// Shared by the engine benchmarks: writes a `## <name>` section of docs/benchmarks.md (replacing only that
// section, creating the file if needed) and describes the machine the numbers came from.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot, type SimdLevel } from '../src/native/loader.js';

/**
 * OpenBLAS's kernel set ("core", OPENBLAS_CORETYPE) for each SIMD level, named for the baselines: left to itself,
 * Debian's OpenBLAS picked its SSE3 'Prescott' kernels on the AVX-512 development machine (4× slower GEMMs), so the
 * benchmarks set the core of the level they measure and record the one OpenBLAS reports.
 */
export const OPENBLAS_CORE: Record<SimdLevel, string> = { avx512: 'SkylakeX', avx2: 'Haswell', scalar: 'Nehalem' };

export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  // The load average says whether other work shared the cores while the numbers were taken.
  return `${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}, 1-min load average ${os.loadavg()[0]!.toFixed(1)} when recorded`;
}

/**
 * The CPU's name, short ("Intel Xeon", "AMD EPYC"): the per-level sections (GEMM, losses, the step against PyTorch)
 * carry it, so that a run on another kind of machine adds its own section instead of replacing another CPU's.
 */
export function cpuName(): string {
  const model = os.cpus()[0]?.model ?? 'unknown CPU';
  return (
    model
      .replace(/\((R|TM|tm)\)/g, '')
      .replace(/\s*@.*$/, '')
      .replace(/\b(Processor|CPU)\b/g, '')
      .replace(/\s+/g, ' ')
      .trim() || 'unknown CPU'
  );
}

export function recordSection(name: string, body: string): string {
  const file = path.join(packageRoot(), 'docs', 'benchmarks.md');
  const text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Benchmarks\n\nEach section is written by its benchmark (`npx tsx bench/<name>.ts --record`).\n';
  const section = `## ${name}\n\n${body.trim()}\n`;
  // The name is literal text ("gemm (avx2)"): its regex characters are escaped.
  const literal = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^## ${literal}\\n[\\s\\S]*?(?=^## |(?![\\s\\S]))`, 'm');
  const next = re.test(text) ? text.replace(re, `${section}\n`) : `${text.trimEnd()}\n\n${section}`;
  writeFileSync(file, next.endsWith('\n') ? next : `${next}\n`);
  return file;
}

export function table(head: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}
