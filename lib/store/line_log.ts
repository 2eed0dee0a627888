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
  // Text is addressed by its offset since the log began, so moving it in the
  // buffer changes one number (#base), not one per line. Line i is
  // [end(i-1), #end[i]), the first kept line starting at #origin; lines before
  // #head were dropped. Who said a line, its kind and time are kept once per
  // batch, and #batch[i] says which batch line i came in. A batch's lines have
  // consecutive ids (the durable stores' row ids): #firstId[b] is its first
  // line's, which is line #firstLine[b].
  #end: number[] = [];
  #batch: number[] = [];
  #from: string[] = [];
  #kind: LineKind[] = [];
  #time: number[] = [];
  #firstId: number[] = [];
  #firstLine: number[] = [];
  #head = 0;
  /** Where line 0 of the arrays starts. */
  #origin = 0;
  /** The buffer holds the text from offset #base on; #used bytes of it are in use. */
  #buffer = new Uint8Array(0);
  #base = 0;
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
    return this.#end.length - this.#head;
  }

  /** Bytes of text kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Keeps the lines of a batch said by `from`: one copy of its text, two
   * numbers a line. `firstId`: the id of its first line, the others following.
   */
  append(from: string, batch: LineBatch, firstId = 0): void {
    const length = batch.text.length;
    const offset = this.#write(batch.text.bytes, length);
    const id = this.#newBatch(from, batch.kind, batch.time, firstId);
    for (const end of batch.ends) {
      this.#end.push(offset + end);
      this.#batch.push(id);
    }
    this.#bytes += length;
    this.#trim();
  }

  /** Keeps one line given as a string; `id`: its id. */
  appendText(from: string, kind: LineKind, time: number, text: string, id = 0): void {
    const bytes = encoder.encode(text);
    const offset = this.#write(bytes, bytes.length);
    const b = this.#newBatch(from, kind, time, id);
    this.#end.push(offset + bytes.length);
    this.#batch.push(b);
    this.#bytes += bytes.length;
    this.#trim();
  }

  /** The last `count` lines, oldest first. */
  last(count: number): HistoryLine[] {
    return this.entries(count).map((entry) => entry.line);
  }

  /** The last `count` lines with their ids, oldest first. */
  entries(count: number): { id: number; line: HistoryLine }[] {
    const first = Math.max(this.#head, this.#end.length - count);
    const out: { id: number; line: HistoryLine }[] = [];
    for (let i = first; i < this.#end.length; i++) {
      const b = this.#batch[i];
      const start = this.#start(i) - this.#base;
      out.push({
        id: this.#firstId[b] + i - this.#firstLine[b],
        line: {
          room: this.room,
          time: this.#time[b],
          from: this.#from[b],
          kind: this.#kind[b],
          text: decoder.decode(this.#buffer.subarray(start, this.#end[i] - this.#base)),
        },
      });
    }
    return out;
  }

  /** The id of the oldest line kept; NaN when none is. */
  get oldestId(): number {
    if (this.size === 0) return NaN;
    const b = this.#batch[this.#head];
    return this.#firstId[b] + this.#head - this.#firstLine[b];
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

  #start(i: number): number {
    return i === 0 ? this.#origin : this.#end[i - 1];
  }

  /** Starts a batch whose first line, with id `firstId`, comes next; returns its index. */
  #newBatch(from: string, kind: LineKind, time: number, firstId: number): number {
    this.#from.push(from);
    this.#kind.push(kind);
    this.#time.push(time);
    this.#firstId.push(firstId);
    this.#firstLine.push(this.#end.length);
    return this.#from.length - 1;
  }

  /** Copies `length` bytes of `src` after the text kept; returns the offset they start at. */
  #write(src: Uint8Array, length: number): number {
    if (this.#used + length > this.#buffer.length) this.#makeRoom(length);
    const at = this.#used;
    if (length <= 64) {
      const buffer = this.#buffer;
      for (let k = 0; k < length; k++) buffer[at + k] = src[k];
    } else {
      this.#buffer.set(length === src.length ? src : src.subarray(0, length), at);
    }
    this.#used += length;
    return this.#base + at;
  }

  /**
   * Moves the kept text to the front of the buffer (a bigger one when it is
   * more than half full) so that `length` more bytes fit: a copy of what is
   * kept each time the buffer fills, which the lines appended since paid for.
   */
  #makeRoom(length: number): void {
    const from = (this.size > 0 ? this.#start(this.#head) : this.#base + this.#used) - this.#base;
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
    this.#base += from;
    this.#used = live;
  }

  #trim(): void {
    const over = this.size - this.#keep;
    if (over > 0) {
      // The lines past `keep` go in one step: their bytes are one subtraction.
      const first = this.#head;
      this.#head += over;
      this.#bytes -= this.#end[this.#head - 1] - this.#start(first);
    }
    while (this.#bytes > this.#maxBytes && this.size > 1) this.#dropOldest();
    this.#compact();
  }

  #dropOldest(): void {
    const i = this.#head++;
    this.#bytes -= this.#end[i] - this.#start(i);
  }

  /** Once half the arrays are dropped lines, cuts them off, and the batches only they used. */
  #compact(): void {
    const head = this.#head;
    if (head < 64 || head * 2 < this.#end.length) return;
    // The first kept line's batch, found before the arrays (and so `size`) change.
    const firstBatch = this.size > 0 ? this.#batch[head] : this.#from.length;
    this.#origin = this.#end[head - 1];
    this.#end = this.#end.slice(head);
    this.#batch = this.#batch.slice(head);
    for (let i = 0; i < this.#batch.length; i++) this.#batch[i] -= firstBatch;
    this.#from = this.#from.slice(firstBatch);
    this.#kind = this.#kind.slice(firstBatch);
    this.#time = this.#time.slice(firstBatch);
    this.#firstId = this.#firstId.slice(firstBatch);
    this.#firstLine = this.#firstLine.slice(firstBatch);
    for (let b = 0; b < this.#firstLine.length; b++) this.#firstLine[b] -= head;
    this.#head = 0;
  }
}
