// The dependency rule of docs/architecture.md, checked over the import graph of every source file:
// a module imports only modules of lower layers (or its own files), and no files import each other in a cycle.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/**
 * Layers from the top down. Each entry is one module: a folder (every file below it that no longer
 * prefix claims) or a single file. A module may import itself and the modules of the layers below
 * its own; modules of one layer may not import each other.
 */
export const LAYERS: string[][] = [
  ['cli'],
  ['src/index.ts'],
  ['src/demo', 'src/info.ts'],
  ['src/teacher', 'src/student', 'src/eval'],
  ['src/teacher/backends'],
  ['losses', 'schedules', 'src/engine'],
  ['src/data'],
  ['src/store'],
  ['src/native', 'src/onnx', 'src/charts'],
  ['src/core'],
];

const SOURCE_DIRS = ['cli', 'src', 'losses', 'schedules'];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

const modules = LAYERS.flatMap((layer, level) => layer.map((prefix) => ({ prefix, level })));

function moduleOf(rel: string): { prefix: string; level: number } | undefined {
  let best: { prefix: string; level: number } | undefined;
  for (const m of modules) {
    const hit = rel === m.prefix || rel.startsWith(`${m.prefix}/`);
    if (hit && (!best || m.prefix.length > best.prefix.length)) best = m;
  }
  return best;
}

/** Relative imports of one file (static, dynamic and re-exports), resolved to repository paths. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  const out: string[] = [];
  for (const ref of info.importedFiles) {
    if (!ref.fileName.startsWith('.')) continue;
    const target = path.resolve(path.dirname(file), ref.fileName).replace(/\.js$/, '.ts');
    out.push(path.relative(ROOT, target));
  }
  return [...new Set(out)];
}

const files = SOURCE_DIRS.flatMap((d) => sourceFiles(path.join(ROOT, d))).map((f) => path.relative(ROOT, f));
const graph = new Map(files.map((f) => [f, importsOf(path.join(ROOT, f))]));

describe('the dependency rule', () => {
  it('places every source file in a layer', () => {
    expect(files.filter((f) => !moduleOf(f))).toEqual([]);
  });

  it('imports only downward (or within a module)', () => {
    const bad: string[] = [];
    for (const [file, targets] of graph) {
      const from = moduleOf(file);
      if (!from) continue;
      for (const target of targets) {
        const to = moduleOf(target);
        if (!to) {
          bad.push(`${file} → ${target} (outside every layer)`);
          continue;
        }
        if (to.prefix === from.prefix || to.level > from.level) continue;
        const why = to.level === from.level ? 'same layer' : 'upward';
        bad.push(`${file} → ${target} (${why}: ${from.prefix} → ${to.prefix})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('has no import cycles', () => {
    // Tarjan's strongly connected components over the file graph; any component of two or more is a cycle.
    let counter = 0;
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    const visit = (v: string): void => {
      index.set(v, counter);
      low.set(v, counter);
      counter++;
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
        } else if (onStack.has(w)) {
          low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
        }
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        for (;;) {
          const w = stack.pop();
          if (w === undefined) break;
          onStack.delete(w);
          component.push(w);
          if (w === v) break;
        }
        if (component.length > 1) cycles.push(component.sort());
      }
    };
    for (const f of graph.keys()) if (!index.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });
});
