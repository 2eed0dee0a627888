/**
 * The SQLite store's lines on their way to the file, as bytes in runs: the
 * lines one person said in one room, of one kind, at one time, back to back,
 * each followed by "\n" (line text never holds a newline: the core shows
 * control characters as `^J`). A run is one row of the file, so the writer
 * makes one row per run rather than one per line, and the chat thread makes
 * no string or object per line: a line costs one copy of its bytes into the
 * queue, and one more into what goes to the writer.
 *
 * Every run's bytes are in one buffer, in order, so a batch for the writer is
 * one slice of it. A batch's runs stay until the writer says they are
 * written ({@linkcode Unwritten.written}), or go back to waiting when the
 * write failed ({@linkcode Unwritten.rewind}).
 *
 * @module
 */

import type { HistoryLine, LineKind } from "../core/messages.ts";
import { ByteWindow } from "./byte_window.ts";
import type { LineBatch } from "./line_log.ts";

/** Runs as the writer takes them: their bytes in one buffer, and what each run is. */
export interface PackedRuns {
  /** Every run's bytes, back to back: each line followed by "\n". */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /**
   * `[id, room, name, kind, time, count, byteLength]` for each run, in order;
   * `id` is its first line's, the others following.
   */
  readonly runs: readonly (readonly [number, string, string, string, number, number, number])[];
}

/** Lines said together, as one row of the file. */
interface Run {
  /** Its first line's id (the store's order of lines); the others follow. */
  id: number;
  readonly room: string;
  readonly name: string;
  readonly kind: LineKind;
  /** Milliseconds since the epoch, as the lines carry it. */
  readonly time: number;
  /** When its first line was added (`performance.now()`), for how long lines wait. */
  readonly since: number;
  /** How many lines. */
  count: number;
  /** Where its bytes are, as offsets since the queue began (see {@linkcode Unwritten}). */
  start: number;
  end: number;
}

/** A line's id and the line, as `recent()` puts history together. */
export interface Entry {
  readonly id: number;
  readonly line: HistoryLine;
}

const NEWLINE = 0x0a;
const MIN_BUFFER = 64 * 1024;
/** A buffer larger than this is made smaller when a quarter of it would do. */
const SHRINK_ABOVE = 4 * 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A queue of lines not yet written, oldest first, in runs.
 *
 * @example
 * ```ts
 * import { Unwritten } from "./unwritten.ts";
 * import assert from "node:assert/strict";
 *
 * const queue = new Unwritten();
 * queue.addText(1, "#lobby", "ana", "message", 0, "hola");
 * queue.addText(2, "#lobby", "ana", "message", 0, "¿qué tal?");
 * queue.addText(3, "#lobby", "bea", "message", 0, "bien");
 * const batch = queue.take(10);
 * assert.deepEqual(batch.runs.map((run) => [run[0], run[2], run[5]]), [[1, "ana", 2], [3, "bea", 1]]);
 * assert.equal(new TextDecoder().decode(batch.bytes), "hola\n¿qué tal?\nbien\n");
 * queue.written();
 * assert.equal(queue.lines, 0);
 * ```
 */
export class Unwritten {
  /** The runs' bytes, addressed by offset. */
  readonly #text = new ByteWindow(MIN_BUFFER, SHRINK_ABOVE);
  /** `#runs[#head..#sent)` are at the writer; `#runs[#sent..]` wait. */
  #runs: Run[] = [];
  #head = 0;
  #sent = 0;
  /** Lines waiting (not at the writer). */
  #lines = 0;

  /** How many lines wait (those at the writer aside). */
  get lines(): number {
    return this.#lines;
  }

  /** When the oldest waiting line was added (`performance.now()`); null when none waits. */
  get oldestSince(): number | null {
    return this.#sent < this.#runs.length ? this.#runs[this.#sent].since : null;
  }

  /** Adds the lines of a relayed batch, said in `room` by `name`, the first with id `id`. */
  addBatch(id: number, room: string, name: string, batch: LineBatch): void {
    const count = batch.ends.length;
    if (count === 0) return;
    const run = this.#runFor(id, room, name, batch.kind, batch.time, batch.text.length + count);
    const src = batch.text.bytes;
    const ends = batch.ends;
    const buffer = this.#text.bytes;
    let at = this.#text.used;
    let start = 0;
    for (let i = 0; i < count; i++) {
      const end = ends[i];
      if (end - start <= 64) {
        for (let k = start; k < end; k++) buffer[at++] = src[k];
      } else {
        buffer.set(src.subarray(start, end), at);
        at += end - start;
      }
      buffer[at++] = NEWLINE;
      start = end;
    }
    this.#added(run, count, at);
  }

  /**
   * Adds one line given as a string, with id `id` (a newline in it, which the
   * core never sends, becomes `^J`).
   */
  addText(
    id: number,
    room: string,
    name: string,
    kind: LineKind,
    time: number,
    text: string,
  ): void {
    const bytes = encoder.encode(text.includes("\n") ? text.replaceAll("\n", "^J") : text);
    const run = this.#runFor(id, room, name, kind, time, bytes.length + 1);
    const window = this.#text;
    window.bytes.set(bytes, window.used);
    window.bytes[window.used + bytes.length] = NEWLINE;
    this.#added(run, 1, window.used + bytes.length + 1);
  }

  /**
   * Sends the oldest waiting lines, `lines` of them (or all, when fewer wait;
   * a run that would go past it is split): they are at the writer until
   * {@linkcode written} or {@linkcode rewind}. One batch at a time. The
   * bytes are copied into `into` when it is large enough (the buffer of an
   * earlier batch, handed back), else into a new buffer.
   */
  take(lines: number, into: ArrayBuffer | null = null): PackedRuns {
    if (this.#sent !== this.#head) throw new Error("A batch is already at the writer");
    const first = this.#sent;
    let left = lines;
    while (left > 0 && this.#sent < this.#runs.length) {
      const run = this.#runs[this.#sent];
      if (run.count > left) this.#split(this.#sent, left);
      left -= this.#runs[this.#sent++].count;
    }
    this.#lines -= lines - left;
    if (first === this.#sent) return { bytes: new Uint8Array(0), runs: [] };
    const start = this.#runs[first].start;
    const end = this.#runs[this.#sent - 1].end;
    const described: [number, string, string, string, number, number, number][] = [];
    for (let i = first; i < this.#sent; i++) {
      const r = this.#runs[i];
      described.push([r.id, r.room, r.name, r.kind, r.time, r.count, r.end - r.start]);
    }
    const length = end - start;
    const bytes = into !== null && into.byteLength >= length
      ? new Uint8Array(into, 0, length)
      : new Uint8Array(Math.max(length, 64 * 1024));
    bytes.set(this.#text.view(start, end));
    return { bytes: bytes.subarray(0, length), runs: described };
  }

  /** The batch at the writer was written: its lines go. */
  written(): void {
    this.#head = this.#sent;
    if (this.#head === this.#runs.length) {
      this.#runs = [];
      this.#head = this.#sent = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#runs.length) {
      this.#runs = this.#runs.slice(this.#head);
      this.#sent -= this.#head;
      this.#head = 0;
    }
  }

  /** The batch at the writer was not written: its lines wait again, first. */
  rewind(): void {
    for (let i = this.#head; i < this.#sent; i++) this.#lines += this.#runs[i].count;
    this.#sent = this.#head;
  }

  /** Drops the `lines` oldest waiting lines (or all); returns how many were dropped. */
  drop(lines: number): number {
    let left = lines;
    let end = this.#sent;
    while (left > 0 && end < this.#runs.length) {
      if (this.#runs[end].count > left) this.#split(end, left);
      left -= this.#runs[end++].count;
    }
    this.#runs.splice(this.#sent, end - this.#sent);
    this.#lines -= lines - left;
    // Their bytes stay in the buffer until the lines before them go.
    return lines - left;
  }

  /**
   * The lines of the room whose lower-cased name is `key` with ids below
   * `before`, oldest first: those at the writer, then those waiting.
   */
  entries(key: string, before: number): Entry[] {
    const out: Entry[] = [];
    for (let i = this.#head; i < this.#runs.length; i++) {
      const run = this.#runs[i];
      const id = run.id;
      if (id >= before) break;
      if (run.room.toLowerCase() === key) {
        const bytes = this.#text.view(run.start, run.end - 1);
        const texts = decoder.decode(bytes).split("\n");
        for (let k = 0; k < texts.length && id + k < before; k++) {
          out.push({
            id: id + k,
            line: {
              room: run.room,
              time: run.time,
              from: run.name,
              kind: run.kind,
              text: texts[k],
            },
          });
        }
      }
    }
    return out;
  }

  /**
   * The waiting run these lines extend (the last one, when it is theirs) or a
   * new one, with room for `bytes` more bytes in the buffer.
   */
  #runFor(
    id: number,
    room: string,
    name: string,
    kind: LineKind,
    time: number,
    bytes: number,
  ): Run {
    const text = this.#text;
    text.reserve(bytes, this.#head < this.#runs.length ? this.#runs[this.#head].start : text.end);
    const last = this.#runs.length > this.#sent ? this.#runs[this.#runs.length - 1] : undefined;
    if (
      last !== undefined && last.id + last.count === id && last.room === room &&
      last.name === name && last.kind === kind && last.time === time &&
      last.end === text.end
    ) return last;
    const end = text.end;
    const since = performance.now();
    const run = { id, room, name, kind, time, since, count: 0, start: end, end };
    this.#runs.push(run);
    return run;
  }

  /** `count` lines were written into `run`, up to `used`. */
  #added(run: Run, count: number, used: number): void {
    this.#text.used = used;
    run.end = this.#text.end;
    run.count += count;
    this.#lines += count;
  }

  /** Splits run `i` in two, its first `count` lines and the rest. */
  #split(i: number, count: number): void {
    const run = this.#runs[i];
    const buffer = this.#text.bytes;
    let at = run.start - this.#text.base;
    // A loop rather than indexOf(), which costs about 200 ns a call here.
    for (let n = 0; n < count; n++) while (buffer[at++] !== NEWLINE);
    const rest = {
      ...run,
      id: run.id + count,
      count: run.count - count,
      start: this.#text.base + at,
    };
    run.count = count;
    run.end = rest.start;
    this.#runs.splice(i + 1, 0, rest);
  }
}
