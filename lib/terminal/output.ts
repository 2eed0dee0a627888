/**
 * Output that never blocks its caller, and input read as lines: the pieces
 * every program of charla writes and reads through. Only the terminal modules
 * touch stdin and stdout.
 *
 * Stdin is read with plain `Deno.stdin.read()` calls and our own line splitting:
 * a cancelled `Deno.stdin.readable` can lose a line, and a pending stdin read
 * cannot be ended, so the read is simply left pending when the program exits.
 *
 * @module
 */

import { LineDecoder, type LineSink } from "../wire/frame.ts";
import { ByteBuilder } from "../wire/text.ts";

const LF = 0x0a;

/** Where output goes: `Deno.stdout`, `Deno.stderr`, a file, or a test's collector. */
export interface Output {
  /** Writes some of `p`; returns how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Where input comes from: `Deno.stdin`, or a test's source. */
export interface Input {
  /** Reads into `p`; null at end of input. */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * Where lines of output go: a plain {@linkcode OutputBuffer}, or a
 * {@linkcode Terminal}'s output, which prints them above the prompt.
 */
export interface LineOutput {
  /** Bytes of whole lines (each ending in `\n`) not yet flushed; callers may append to it. */
  pending: ByteBuilder;
  /** Appends a line of text (a newline is added) and flushes. */
  line(text: string): void;
  /** Sends on what is pending. */
  flush(): void;
  /** Undefined when there is room; otherwise settles when the backlog is written. */
  ready(): Promise<void> | undefined;
  /** Settles when everything so far has been written. */
  drained(): Promise<void>;
  /** Bytes written so far: how a caller tells a slow output from a stalled one. */
  readonly written: number;
}

/**
 * Buffered output that never blocks its caller: text is appended to one buffer
 * while the other is being written, then they swap, so a burst of lines costs a
 * few large writes and no copies. Past `highWater` pending bytes, `ready()`
 * returns a promise: callers that await it push back instead of growing memory.
 *
 * @example
 * ```ts
 * import { OutputBuffer } from "./output.ts";
 * import assert from "node:assert/strict";
 *
 * const chunks: string[] = [];
 * const out = new OutputBuffer({
 *   write: (p: Uint8Array) => Promise.resolve(chunks.push(new TextDecoder().decode(p)) && p.length),
 * });
 * out.line("uno");
 * out.line("dos");
 * await out.drained();
 * assert.equal(chunks.join(""), "uno\ndos\n");
 * ```
 */
export class OutputBuffer implements LineOutput {
  /** Bytes appended since the last write began; callers may append to it directly. */
  pending = new ByteBuilder(64 * 1024);
  /** The buffer being written, kept to swap back in. */
  #spare = new ByteBuilder(64 * 1024);
  readonly #out: Output;
  readonly #highWater: number;
  #writing = false;
  /** Set when a write failed (say, a closed pipe): output is dropped from then on. */
  #failed: unknown = null;
  /** Waiting for the pending bytes to be written. */
  #waiters: (() => void)[] = [];
  /** Bytes written so far. */
  #written = 0;

  /** Output to `out`; `ready()` pushes back past `highWater` pending bytes. */
  constructor(out: Output, highWater = 1024 * 1024) {
    this.#out = out;
    this.#highWater = highWater;
  }

  /** Bytes written so far. */
  get written(): number {
    return this.#written;
  }

  /** The error that stopped output, or null. */
  get failed(): unknown {
    return this.#failed;
  }

  /** Appends a line of text (a newline is added) and schedules a write. */
  line(text: string): void {
    this.pending.appendText(text);
    this.pending.appendByte(LF);
    this.flush();
  }

  /** Starts writing what is pending, unless a write is under way (it will pick it up). */
  flush(): void {
    if (this.#writing || this.pending.length === 0) return;
    this.#writing = true;
    void this.#writeLoop();
  }

  /** Undefined when there is room; otherwise settles once the backlog is written. */
  ready(): Promise<void> | undefined {
    return this.pending.length > this.#highWater && this.#failed === null
      ? this.drained()
      : undefined;
  }

  /** Settles when everything appended so far has been written (or output failed). */
  drained(): Promise<void> {
    this.flush();
    if (!this.#writing) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push(resolve);
    return promise;
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.pending.length > 0 && this.#failed === null) {
        const data = this.pending;
        this.pending = this.#spare;
        this.#spare = data;
        let written = 0;
        while (written < data.length) {
          const n = await this.#out.write(data.bytes.subarray(written, data.length));
          written += n;
          this.#written += n;
        }
        data.clear();
      }
    } catch (error) {
      // A closed pipe or terminal: nobody is reading, so output stops here.
      this.#failed = error;
    } finally {
      if (this.#failed !== null) this.pending.clear();
      this.#writing = false;
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const wake of waiters) wake();
    }
  }
}

/**
 * Reads `input` to its end, handing each line to `sink` (bytes, without the
 * line ending) and awaiting the promise `flush` returns after each chunk.
 */
export async function readLines(
  input: Input,
  sink: LineSink & { flush?(): void | Promise<void> },
  maxLine = 1024 * 1024,
): Promise<void> {
  const lines = new LineDecoder({ maxLine });
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    const n = await input.read(buffer);
    if (n === null) break;
    lines.push(buffer.subarray(0, n), sink);
    await sink.flush?.();
  }
  lines.end(sink);
  await sink.flush?.();
}
