// Small pieces shared by the zod schemas of our files: numbers that may be NaN in memory (JSON writes them
// as null), and the one-line rendering of a failed parse that error messages carry.
import { z } from 'zod';

/** A metric in a JSON file: written as null when NaN, read back (null or absent) as NaN. */
export const jsonNumber = z
  .number()
  .nullable()
  .optional()
  .transform((v) => v ?? NaN);

/** "path: message; path: message" for the issues of a failed safeParse. */
export function formatIssues(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string {
  return issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
}
