/**
 * The last lines of one room, kept as bytes: what the memory store holds per
 * room. Appending a relayed batch copies its bytes into one buffer per room
 * and writes one number per line into a typed array; no object, string or
 * buffer is made per line until someone asks for the history. One
 * `HistoryLine` per line, or 64 KiB pages, made the server's peak memory grow
 * by 14 MiB more in a relay of 50,000 lines (the pages: freed memory the
 * allocator keeps); two `number[]` pushes per line cost about a tenth of the
 * relay's time with 10 clients (their growth, and the garbage it left).
 *
 * @module
 */

import type { HistoryLine, LineKind, RoomName } from "../core/messages.ts";
import { ByteWindow } from "./byte_window.ts";

/** The smallest buffer a room's text gets. */
const MIN_BUFFER = 4096;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The lines of a {@linkcode SaidBatch}, as the log takes them. */
export interface LineBatch {
  /** Every line's text, each followed by a newline. */
  readonly text: { readonly bytes: Uint8Array; readonly length: number };
  /** Where each line's text ends in `text` (at its newline). */
  readonly ends: readonly number[];
  readonly kind: LineKind;
  /** Milliseconds since the epoch. */
  readonly time: number;
}

/**
 * The last lines of a room, oldest first, as bytes in one buffer.
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
  // Lines are numbered from 0 since the log began, and text is addressed by its
  // offset since the log began, so dropping old lines or moving the text in
  // the buffer changes one number, not one per line. Line k is the text
  // between offsets #ends[k - #lineBase] and #ends[k - #lineBase + 1], less
  // the newline that ends each line; lines before #first were dropped, #next
  // is the number the next line gets.
  #ends = new Float64Array(64);
  /** Entries of #ends in use: one more than the lines it covers. */
  #count = 1;
  #lineBase = 0;
  #first = 0;
  #next = 0;
  // Who said a line, its kind and time are kept once per batch: batch b starts
  // at line #batchLine[b], and its lines have ids from #batchId[b] on (the
  // durable stores' row ids). Batches before #batchHead only held dropped lines.
  #batchLine: number[] = [];
  #batchId: number[] = [];
  #from: string[] = [];
  #kind: LineKind[] = [];
  #time: number[] = [];
  #batchHead = 0;
  /** The text kept, addressed by offset. */
  readonly #text = new ByteWindow(MIN_BUFFER);

  /** A log keeping at most `keep` lines and `maxBytes` bytes of text. */
  constructor(room: RoomName, options: { keep: number; maxBytes: number }) {
    this.room = room;
    this.#keep = options.keep;
    this.#maxBytes = options.maxBytes;
  }

  /** How many lines are kept. */
  get size(): number {
    return this.#next - this.#first;
  }

  /** Bytes of text kept (their newlines aside). */
  get bytes(): number {
    return this.#ends[this.#count - 1] - this.#ends[this.#first - this.#lineBase] - this.size;
  }

  /**
   * Keeps the lines of a batch said by `from`: one copy of its text, one
   * number a line. `firstId`: the id of its first line, the others following.
   */
  append(from: string, batch: LineBatch, firstId = 0): void {
    const ends = batch.ends;
    const n = ends.length;
    if (n === 0) return;
    const offset = this.#write(batch.text.bytes, batch.text.length);
    this.#newBatch(from, batch.kind, batch.time, firstId);
    if (this.#count + n > this.#ends.length) this.#growEnds(n);
    const kept = this.#ends;
    let c = this.#count;
    for (let i = 0; i < n; i++) kept[c++] = offset + ends[i] + 1; // after its newline
    this.#count = c;
    this.#next += n;
    this.#trim();
  }

  /** Keeps one line given as a string; `id`: its id. */
  appendText(from: string, kind: LineKind, time: number, text: string, id = 0): void {
    const bytes = encoder.encode(`${text}\n`);
    const offset = this.#write(bytes, bytes.length);
    this.#newBatch(from, kind, time, id);
    if (this.#count + 1 > this.#ends.length) this.#growEnds(1);
    this.#ends[this.#count++] = offset + bytes.length;
    this.#next++;
    this.#trim();
  }

  /** The last `count` lines, oldest first. */
  last(count: number): HistoryLine[] {
    return this.entries(count).map((entry) => entry.line);
  }

  /** The last `count` lines with their ids, oldest first. */
  entries(count: number): { id: number; line: HistoryLine }[] {
    const from = Math.max(this.#first, this.#next - Math.max(0, Math.floor(count)));
    const out: { id: number; line: HistoryLine }[] = [];
    if (from >= this.#next) return out;
    let b = this.#batchOf(from);
    for (let k = from; k < this.#next; k++) {
      while (b + 1 < this.#batchLine.length && this.#batchLine[b + 1] <= k) b++;
      const j = k - this.#lineBase;
      const text = this.#text.view(this.#ends[j], this.#ends[j + 1] - 1); // not its newline
      out.push({
        id: this.#batchId[b] + k - this.#batchLine[b],
        line: {
          room: this.room,
          time: this.#time[b],
          from: this.#from[b],
          kind: this.#kind[b],
          text: decoder.decode(text),
        },
      });
    }
    return out;
  }

  /** The id of the oldest line kept; NaN when none is. */
  get oldestId(): number {
    if (this.size === 0) return NaN;
    const b = this.#batchOf(this.#first);
    return this.#batchId[b] + this.#first - this.#batchLine[b];
  }

  /** Drops the oldest lines until at most `bytes` bytes are kept; returns how many were dropped. */
  shrinkTo(bytes: number): number {
    const before = this.#first;
    while (this.bytes > bytes && this.size > 0) this.#first++;
    this.#dropped();
    return this.#first - before;
  }

  /** The batch line `k` (a kept line) came in. */
  #batchOf(k: number): number {
    let lo = this.#batchHead;
    let hi = this.#batchLine.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#batchLine[mid] <= k) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Starts a batch whose first line, with id `firstId`, comes next. */
  #newBatch(from: string, kind: LineKind, time: number, firstId: number): void {
    this.#batchLine.push(this.#next);
    this.#batchId.push(firstId);
    this.#from.push(from);
    this.#kind.push(kind);
    this.#time.push(time);
  }

  /** Makes room in #ends for `n` more, moving out what was dropped, or growing it. */
  #growEnds(n: number): void {
    const dead = this.#first - this.#lineBase;
    const live = this.#count - dead;
    let size = this.#ends.length;
    while (size < 2 * (live + n)) size *= 2;
    const ends = size > this.#ends.length ? new Float64Array(size) : this.#ends;
    ends.set(this.#ends.subarray(dead, this.#count));
    this.#ends = ends;
    this.#count = live;
    this.#lineBase = this.#first;
  }

  /** Copies `length` bytes of `src` after the text kept; returns the offset they start at. */
  #write(src: Uint8Array, length: number): number {
    const text = this.#text;
    text.reserve(length, this.#ends[this.#first - this.#lineBase]);
    const at = text.used;
    const buffer = text.bytes;
    if (length <= 64) {
      for (let k = 0; k < length; k++) buffer[at + k] = src[k];
    } else {
      buffer.set(length === src.length ? src : src.subarray(0, length), at);
    }
    text.used += length;
    return text.base + at;
  }

  /** Drops the lines past `keep`, then the oldest while over `maxBytes` (the newest stays). */
  #trim(): void {
    const over = this.size - this.#keep;
    if (over > 0) this.#first += over;
    if (this.bytes > this.#maxBytes) {
      while (this.bytes > this.#maxBytes && this.size > 1) this.#first++;
    }
    this.#dropped();
  }

  /** Forgets the batches only dropped lines were in, once they are most of them. */
  #dropped(): void {
    const lines = this.#batchLine;
    let head = this.#batchHead;
    while (head + 1 < lines.length && lines[head + 1] <= this.#first) head++;
    if (this.size === 0 && head < lines.length && lines[head] < this.#first) head = lines.length;
    this.#batchHead = head;
    if (head >= 64 && head * 2 >= lines.length) {
      this.#batchLine = lines.slice(head);
      this.#batchId = this.#batchId.slice(head);
      this.#from = this.#from.slice(head);
      this.#kind = this.#kind.slice(head);
      this.#time = this.#time.slice(head);
      this.#batchHead = 0;
    }
  }
}
