// A one-line progress display on stderr: redrawn in place on a terminal, one line per phase otherwise.
import type { ProgressUpdate } from '../jobs/job.js';

export class ProgressBar {
  private phase = '';
  private fraction = 0;
  private bytes = 0;
  private lastDraw = 0;
  private readonly started = performance.now();

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  update(u: ProgressUpdate): void {
    if (u.phase && u.phase !== this.phase) {
      if (this.phase && this.out.isTTY) this.draw(true);
      this.phase = u.phase;
      this.fraction = 0;
      if (!this.out.isTTY) this.out.write(`${this.elapsed()} ${this.phase}\n`);
    }
    if (u.fraction !== undefined) this.fraction = u.fraction;
    if (u.bytesDownloaded !== undefined) this.bytes = u.bytesDownloaded;
    if (u.bytesUploaded !== undefined) this.bytes = u.bytesUploaded;
    if (this.out.isTTY && performance.now() - this.lastDraw > 100) this.draw(false);
  }

  done(message: string): void {
    if (this.out.isTTY) this.draw(true);
    this.out.write(`${this.elapsed()} ${message}\n`);
  }

  private draw(final: boolean): void {
    this.lastDraw = performance.now();
    const width = 30;
    const filled = Math.round(Math.min(1, this.fraction) * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const mib = this.bytes > 0 ? ` ${(this.bytes / 2 ** 20).toFixed(1)} MiB` : '';
    const pct = (this.fraction * 100).toFixed(0).padStart(3);
    this.out.write(
      `\r${this.elapsed()} ${this.phase.padEnd(11)} [${bar}] ${pct}%${mib}\x1b[K${final ? '\n' : ''}`,
    );
  }

  private elapsed(): string {
    return `[${((performance.now() - this.started) / 1000).toFixed(1).padStart(6)}s]`;
  }
}
