/**
 * The last lines of one room, kept as bytes: what the memory store holds per
 * room. Appending a relayed batch copies its bytes into one buffer per room
 * and records a few numbers per line; no object, string or buffer is made per
 * line until someone asks for the history. One `HistoryLine` per line, or
 * 64 KiB pages, made the server's peak memory grow by 14 MiB more in a relay
 * of 50,000 lines (the pages: freed memory the allocator keeps).
 *
 * @module
 */

import type { HistoryLine, LineKind, RoomName } from "../core/messages.ts";

/** The smallest buffer a room's text gets. */
const MIN_BUFFER = 4096;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The lines of a {@linkcode SaidBatch}, as the log takes them. */
export interface LineBatch {
  /** Every line's text, back to back. */
  readonly text: { readonly bytes: Uint8Array; readonly length: number };
  /** Where each line ends in `text`. */
  readonly ends: readonly number[];
  readonly kind: LineKind;
  /** Milliseconds since the epoch. */
  readonly time: number;
}

/**
 * The last lines of a room, oldest first, as bytes in pages.
 *
 * @example
 * ```ts
 * import { LineLog } from "./line_log.ts";
 * import assert from "node:assert/strict";
 *
 * const log = new LineLog("#lobby", { keep: 2, maxBytes: 1024 });
 * for (const text of ["uno", "dos", "tres"]) log.appendText("ana", "message", 0, text);
 * assert.deepEqual(log.last(5).map((l) => l.text), ["dos", "tres"]);
 * ```
 */
export class LineLog {
  readonly room: RoomName;
  readonly #keep: number;
  readonly #maxBytes: number;
  // One entry per line, in parallel arrays; entries before #head were dropped.
  #from: string[] = [];
  #kind: LineKind[] = [];
  #time: number[] = [];
  #start: number[] = [];
  #end: number[] = [];
  #head = 0;
  /** The text of the lines, back to back from `#start[#head]` to `#used`. */
  #buffer = new Uint8Array(0);
  #used = 0;
  /** Bytes of the lines kept. */
  #bytes = 0;

  /** A log keeping at most `keep` lines and `maxBytes` bytes of text. */
  constructor(room: RoomName, options: { keep: number; maxBytes: number }) {
    this.room = room;
    this.#keep = options.keep;
    this.#maxBytes = options.maxBytes;
  }

  /** How many lines are kept. */
  get size(): number {
    return this.#from.length - this.#head;
  }

  /** Bytes of text kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Keeps the lines of a batch said by `from`. */
  append(from: string, batch: LineBatch): void {
    const text = batch.text.bytes;
    let start = 0;
    for (const end of batch.ends) {
      this.#push(from, batch.kind, batch.time, text, start, end);
      start = end;
    }
    this.#trim();
  }

  /** Keeps one line given as a string. */
  appendText(from: string, kind: LineKind, time: number, text: string): void {
    const bytes = encoder.encode(text);
    this.#push(from, kind, time, bytes, 0, bytes.length);
    this.#trim();
  }

  /** The last `count` lines, oldest first. */
  last(count: number): HistoryLine[] {
    const first = Math.max(this.#head, this.#from.length - count);
    const out: HistoryLine[] = [];
    for (let i = first; i < this.#from.length; i++) {
      out.push({
        room: this.room,
        time: this.#time[i],
        from: this.#from[i],
        kind: this.#kind[i],
        text: decoder.decode(this.#buffer.subarray(this.#start[i], this.#end[i])),
      });
    }
    return out;
  }

  /** Drops the oldest lines until at most `bytes` bytes are kept; returns how many were dropped. */
  shrinkTo(bytes: number): number {
    let dropped = 0;
    while (this.#bytes > bytes && this.size > 0) {
      this.#dropOldest();
      dropped++;
    }
    this.#compact();
    return dropped;
  }

  #push(from: string, kind: LineKind, time: number, src: Uint8Array, start: number, end: number) {
    const length = end - start;
    if (this.#used + length > this.#buffer.length) this.#makeRoom(length);
    const buffer = this.#buffer;
    const at = this.#used;
    if (length <= 64) {
      for (let k = 0; k < length; k++) buffer[at + k] = src[start + k];
    } else {
      buffer.set(src.subarray(start, end), at);
    }
    this.#used += length;
    this.#bytes += length;
    this.#from.push(from);
    this.#kind.push(kind);
    this.#time.push(time);
    this.#start.push(at);
    this.#end.push(at + length);
  }

  /**
   * Moves the kept text to the front of the buffer (a bigger one when it is
   * more than half full) so that `length` more bytes fit: a copy of what is
   * kept each time the buffer fills, which is paid for by the lines appended
   * since the last.
   */
  #makeRoom(length: number): void {
    const from = this.size > 0 ? this.#start[this.#head] : this.#used;
    const live = this.#used - from;
    let size = Math.max(MIN_BUFFER, this.#buffer.length);
    while (size < 2 * (live + length)) size *= 2;
    if (size > this.#buffer.length) {
      const bigger = new Uint8Array(size);
      bigger.set(this.#buffer.subarray(from, this.#used));
      this.#buffer = bigger;
    } else {
      this.#buffer.copyWithin(0, from, this.#used);
    }
    for (let i = this.#head; i < this.#start.length; i++) {
      this.#start[i] -= from;
      this.#end[i] -= from;
    }
    this.#used = live;
  }

  #trim(): void {
    while (this.size > this.#keep || (this.#bytes > this.#maxBytes && this.size > 1)) {
      this.#dropOldest();
    }
    this.#compact();
  }

  #dropOldest(): void {
    const i = this.#head++;
    this.#bytes -= this.#end[i] - this.#start[i];
  }

  /** Once half the arrays are dropped lines, cuts them off (and the pages only they held). */
  #compact(): void {
    const head = this.#head;
    if (head < 64 || head * 2 < this.#from.length) return;
    this.#from = this.#from.slice(head);
    this.#kind = this.#kind.slice(head);
    this.#time = this.#time.slice(head);
    this.#start = this.#start.slice(head);
    this.#end = this.#end.slice(head);
    this.#head = 0;
  }
}
