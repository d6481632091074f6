// Progress rendering for long work: a bar with rate and ETA on a TTY, a throttled plain line
// (phase, done/total, rate, ETA) when stderr is not a terminal, nothing when silent.
import cliProgress from 'cli-progress';
import type { ProgressEvent, ProgressFn } from '../src/core/types.js';

export interface ProgressRenderer {
  update: ProgressFn;
  stop(): void;
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

function fmtRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(2)}M`;
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)}k`;
  return r.toFixed(1);
}

export function createProgress(
  opts: { silent?: boolean; stream?: NodeJS.WriteStream; intervalMs?: number } = {},
): ProgressRenderer {
  const stream = opts.stream ?? process.stderr;
  if (opts.silent) return { update: () => {}, stop: () => {} };
  const tty = Boolean(stream.isTTY);
  const interval = opts.intervalMs ?? 2000;
  const phases = new Map<string, { start: number; last: number; bar?: cliProgress.SingleBar }>();
  let multi: cliProgress.MultiBar | undefined;

  const update: ProgressFn = (ev: ProgressEvent) => {
    const now = Date.now();
    let st = phases.get(ev.phase);
    if (!st) {
      // The first line waits one interval too: a command that fails at once prints only its error.
      st = { start: now, last: now };
      phases.set(ev.phase, st);
    }
    const elapsed = Math.max(1e-3, (now - st.start) / 1000);
    const rate = ev.done / elapsed;
    const unit = ev.unit ?? 'items';
    const eta = ev.total !== undefined && rate > 0 ? (ev.total - ev.done) / rate : NaN;
    if (tty) {
      multi ??= new cliProgress.MultiBar(
        {
          stream,
          format: ' {phase} [{bar}] {percentage}% {value}/{total} {unit} | {rate}/s | ETA {etaf} {message}',
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      );
      if (!st.bar)
        st.bar = multi.create(ev.total ?? 0, 0, { phase: ev.phase, unit, rate: '0', etaf: '?', message: '' });
      if (ev.total !== undefined) st.bar.setTotal(ev.total);
      st.bar.update(ev.done, { rate: fmtRate(rate), etaf: fmtDuration(eta), message: ev.message ?? '' });
      return;
    }
    const finished = ev.total !== undefined && ev.done >= ev.total;
    if (!finished && now - st.last < interval) return;
    st.last = now;
    const pct = ev.total ? ` (${((100 * ev.done) / ev.total).toFixed(1)}%)` : '';
    const of = ev.total !== undefined ? `/${ev.total}` : '';
    stream.write(
      `${ev.phase}: ${ev.done}${of} ${unit}${pct}, ${fmtRate(rate)} ${unit}/s, ETA ${finished ? '0s' : fmtDuration(eta)}${ev.message ? `, ${ev.message}` : ''}\n`,
    );
  };

  return {
    update,
    stop() {
      multi?.stop();
      multi = undefined;
    },
  };
}
