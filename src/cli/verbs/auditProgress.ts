/**
 * Progress of `sputnik audit`: one live bar per model on a terminal, plain lines when output goes
 * to a log or a pipe (a redrawn bar would be unreadable noise there).
 */
import cliProgress from "cli-progress";

export interface AuditProgressUpdate {
  model: string;
  done: number;
  total: number;
}

export interface AuditProgressReporter {
  update(progress: AuditProgressUpdate): void;
  stop(): void;
}

export function createAuditProgress(models: string[], stream: NodeJS.WriteStream = process.stdout): AuditProgressReporter {
  return stream.isTTY ? new BarsReporter(models, stream) : new LinesReporter(stream);
}

class BarsReporter implements AuditProgressReporter {
  private readonly multi: cliProgress.MultiBar;
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  private readonly width: number;

  constructor(models: string[], stream: NodeJS.WriteStream) {
    this.width = Math.min(40, Math.max(...models.map((m) => m.length)));
    this.multi = new cliProgress.MultiBar(
      { stream, format: "{model} {bar} {value}/{total} answers", hideCursor: true, barsize: 30, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
  }

  update(p: AuditProgressUpdate): void {
    const model = p.model.padEnd(this.width).slice(0, this.width);
    let bar = this.bars.get(p.model);
    if (!bar) {
      bar = this.multi.create(Math.max(1, p.total), p.done, { model });
      this.bars.set(p.model, bar);
    }
    bar.update(p.done, { model });
  }

  stop(): void {
    this.multi.stop();
  }
}

/** A line when a model passes each tenth of its questions, and when it finishes. */
class LinesReporter implements AuditProgressReporter {
  private readonly shown = new Map<string, number>();

  constructor(private readonly stream: NodeJS.WritableStream) {}

  update(p: AuditProgressUpdate): void {
    const tenth = p.total > 0 ? Math.floor((p.done * 10) / p.total) : 10;
    const last = this.shown.get(p.model);
    if (last !== undefined && tenth <= last) return;
    this.shown.set(p.model, tenth);
    this.stream.write(`${p.model}: ${p.done}/${p.total} answers\n`);
  }

  stop(): void {}
}
