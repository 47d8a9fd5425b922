// Numbers as people read them: owns byte sizes, durations, and the download speed / time-left
// estimate shown under the progress bar.

const MB = 1000 * 1000;

/** "26.7 MB", "1.12 GB": decimal units, as download sizes are usually given. */
export function formatBytes(bytes) {
  if (bytes >= 1000 * MB) return `${(bytes / (1000 * MB)).toFixed(2)} GB`;
  if (bytes >= 100 * MB) return `${Math.round(bytes / MB)} MB`;
  if (bytes >= MB) return `${(bytes / MB).toFixed(1)} MB`;
  if (bytes >= 1000) return `${Math.round(bytes / 1000)} kB`;
  return `${bytes} B`;
}

/** "45 s", "3 min 20 s", "1 h 05 min". */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export function formatNumber(value) {
  return new Intl.NumberFormat('en-US').format(value);
}

/**
 * Transfer speed over a sliding window of recent samples (so the estimate follows the current
 * speed rather than the average since the start), and the time left at that speed.
 */
export class RateMeter {
  constructor(windowMs = 4000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  reset() {
    this.samples = [];
  }

  /** Records that `done` units were done at time `now` (ms). */
  add(done, now = performance.now()) {
    this.samples.push({ done, now });
    while (this.samples.length > 2 && now - this.samples[1].now > this.windowMs) this.samples.shift();
  }

  /** Units per second over the window; null until the window spans some time. */
  rate() {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || last.now - first.now < 250) return null;
    return ((last.done - first.done) * 1000) / (last.now - first.now);
  }

  /** Seconds until `total` at the current rate; null when unknown. */
  secondsLeft(total) {
    const rate = this.rate();
    const last = this.samples.at(-1);
    if (!rate || rate <= 0 || !last) return null;
    return (total - last.done) / rate;
  }
}
