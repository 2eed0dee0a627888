/**
 * What a client shows of the server's lines on a screen without a terminal
 * (or above a terminal's prompt).
 *
 * @module
 */

import type { ReadSink } from "../net/connection.ts";
import type { LineOutput } from "../terminal/output.ts";

const LF = 0x0a;

/**
 * Shows what a server sends: each line made safe for the terminal (see
 * `sanitize()` in text.ts) and written through an {@linkcode OutputBuffer}.
 */
export class ClientScreen implements ReadSink {
  readonly #out: LineOutput;

  /** A screen writing to `out`. */
  constructor(out: LineOutput) {
    this.#out = out;
  }

  /** Appends one line from the server. */
  line(buf: Uint8Array, start: number, end: number): void {
    this.#out.pending.appendSanitized(buf, start, end);
    this.#out.pending.appendByte(LF);
  }

  /** The server sent a line too long to show. */
  overlong(): void {
    this.#out.line("charla: (an over-long line from the server was dropped)");
  }

  /** Writes what the last read brought; pushes back while the terminal is behind. */
  flush(): Promise<void> | undefined {
    this.#out.flush();
    return this.#out.ready();
  }
}
