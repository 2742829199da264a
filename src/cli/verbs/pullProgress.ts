/**
 * Download progress for `sputnik pull`: a live bar on a terminal, plain periodic lines when
 * output goes to a log or a pipe (where a redrawn bar would be unreadable noise).
 */
import cliProgress from "cli-progress";
import type { DownloadProgress } from "../../models/pull.ts";
import { formatBytes, formatDuration } from "./units.ts";

export interface ProgressReporter {
  update(progress: DownloadProgress): void;
  stop(): void;
}

const LINE_INTERVAL_MS = 5000;

export function createProgressReporter(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  return stream.isTTY ? new BarReporter(stream) : new LineReporter(stream);
}

/** Speed over this run only: bytes resumed from disk did not come over the network now. */
class Rate {
  private startedAt = 0;
  private startBytes = 0;

  figures(p: DownloadProgress) {
    const now = Date.now();
    if (this.startedAt === 0) {
      this.startedAt = now;
      this.startBytes = p.downloadedBytes;
    }
    const seconds = (now - this.startedAt) / 1000;
    const speed = seconds > 0 ? (p.downloadedBytes - this.startBytes) / seconds : 0;
    const remaining = p.totalBytes === null ? null : p.totalBytes - p.downloadedBytes;
    const timeLeft = remaining !== null && speed > 0 ? formatDuration(remaining / speed) : "?";
    return { speed: `${formatBytes(speed)}/s`, timeLeft };
  }
}

class BarReporter implements ProgressReporter {
  private bar: cliProgress.SingleBar | null = null;
  private rate = new Rate();

  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(p: DownloadProgress): void {
    const figures = this.rate.figures(p);
    const payload = {
      done: formatBytes(p.downloadedBytes),
      size: p.totalBytes === null ? "?" : formatBytes(p.totalBytes),
      ...figures,
    };
    if (this.bar === null) {
      this.bar = new cliProgress.SingleBar({
        stream: this.stream,
        format: "{bar} {percentage}% | {done} / {size} | {speed} | ETA {timeLeft}",
        hideCursor: true,
        barsize: 30,
      }, cliProgress.Presets.shades_classic);
      // Unknown size: a total of 0 would divide by zero, so the bar then just tracks bytes.
      this.bar.start(p.totalBytes ?? Math.max(p.downloadedBytes, 1), p.downloadedBytes, payload);
      return;
    }
    if (p.totalBytes === null) this.bar.setTotal(Math.max(p.downloadedBytes, 1));
    this.bar.update(p.downloadedBytes, payload);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

class LineReporter implements ProgressReporter {
  private lastLineAt = 0;
  private last: DownloadProgress | null = null;
  private rate = new Rate();

  constructor(private readonly stream: NodeJS.WritableStream) {}

  update(p: DownloadProgress): void {
    this.last = p;
    const figures = this.rate.figures(p);
    const now = Date.now();
    if (now - this.lastLineAt < LINE_INTERVAL_MS) return;
    this.lastLineAt = now;
    this.write(p, figures);
  }

  stop(): void {
    if (this.last) this.write(this.last, this.rate.figures(this.last));
    this.last = null;
  }

  private write(p: DownloadProgress, figures: { speed: string; timeLeft: string }): void {
    const percent = p.totalBytes ? ` ${((100 * p.downloadedBytes) / p.totalBytes).toFixed(1)}%` : "";
    const size = p.totalBytes === null ? "" : ` / ${formatBytes(p.totalBytes)}`;
    this.stream.write(`download:${percent} ${formatBytes(p.downloadedBytes)}${size}, ${figures.speed}, ETA ${figures.timeLeft}\n`);
  }
}
