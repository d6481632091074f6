// `distill schedule list`: the built-in weighting schedules with their params and defaults.
import { listSchedules, type ScheduleInfo } from '../../../schedules/index.js';
import { BaseCommand } from '../../base.js';

export default class ScheduleList extends BaseCommand<typeof ScheduleList> {
  static override description = 'List the built-in hard/soft weighting schedules with their params and defaults';
  static override examples = ['<%= config.bin %> schedule list', '<%= config.bin %> schedule list --json'];

  async run(): Promise<{ schedules: ScheduleInfo[] }> {
    const all = listSchedules();
    for (const s of all) {
      this.log(`${s.id} — ${s.description}`);
      for (const p of s.params) {
        const def =
          p.default !== undefined ? ` = ${JSON.stringify(p.default)}` : p.required ? ' (required)' : ' (optional)';
        this.log(`    ${p.name}: ${p.type}${def}${p.description ? `  ${p.description}` : ''}`);
      }
    }
    this.log(
      '\nPlugins: pass a file path (./my-schedule.mjs) or a package name wherever a schedule id goes; see docs/plugins.md.',
    );
    return { schedules: all };
  }
}
