// Describes schedules for `distill schedule list`: id, description and each parameter's type, default
// and meaning, read from the params schema (zod → JSON Schema), so the listing cannot drift from validation.
import { z } from 'zod';
import type { ScheduleDefinition } from '../define.js';
import type { ScheduleRegistry } from './load.js';

export interface ScheduleParamInfo {
  name: string;
  /** JSON-Schema-ish type text, e.g. "number ≥ 0", "array", "number | object". */
  type: string;
  required: boolean;
  default?: unknown;
  description?: string;
}

export interface ScheduleInfo {
  id: string;
  description: string;
  source: string;
  params: ScheduleParamInfo[];
}

/** The parts of a JSON Schema (as zod writes one) that a listing shows. */
interface JsonSchemaNode {
  type?: string;
  anyOf?: JsonSchemaNode[];
  enum?: unknown[];
  items?: JsonSchemaNode;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  exclusiveMaximum?: number;
  default?: unknown;
  description?: string;
  properties?: Record<string, JsonSchemaNode>;
  required?: string[];
}

function typeText(s: JsonSchemaNode): string {
  if (Array.isArray(s.anyOf)) return s.anyOf.map(typeText).join(' | ');
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  let t = String(s.type ?? 'any');
  if (t === 'array' && s.items) t = `${typeText(s.items)}[]`;
  const bounds: string[] = [];
  if (s.minimum !== undefined) bounds.push(`≥ ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) bounds.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined) bounds.push(`≤ ${s.maximum}`);
  if (s.exclusiveMaximum !== undefined) bounds.push(`< ${s.exclusiveMaximum}`);
  return bounds.length ? `${t} ${bounds.join(', ')}` : t;
}

export function describeSchedule(def: ScheduleDefinition, source = 'built-in'): ScheduleInfo {
  let params: ScheduleParamInfo[] = [];
  try {
    const js = z.toJSONSchema(def.params, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
    const required = new Set<string>(js.required ?? []);
    params = Object.entries(js.properties ?? {}).map(([name, p]) => {
      const info: ScheduleParamInfo = { name, type: typeText(p), required: required.has(name) };
      if (p.default !== undefined) info.default = p.default;
      if (p.description) info.description = p.description;
      return info;
    });
  } catch {
    // A foreign (non-zod) params schema cannot be introspected; listing it without params is still useful.
  }
  return { id: def.id, description: def.description ?? '', source, params };
}

/** Every schedule of a registry, sorted by id. */
export function listSchedulesWith(registry: ScheduleRegistry): ScheduleInfo[] {
  return registry.list().map((d) => describeSchedule(d));
}
