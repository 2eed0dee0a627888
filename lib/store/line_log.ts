/**
 * The last lines of one room, kept as bytes: what the memory store holds per
 * room. Appending a relayed batch copies its bytes into one buffer per room
 * and writes one number per line, and four per batch, into typed arrays; no
 * object, string or buffer is made per line or per batch until someone asks
 * for the history. One `HistoryLine` per line, or 64 KiB pages, made the
 * server's peak memory grow by 14 MiB more in a relay of 50,000 lines (the
 * pages: freed memory the allocator keeps); two `number[]` pushes per line
 * cost about a tenth of the relay's time with 10 clients (their growth, and
 * the garbage it left). Five pushes per batch into growing arrays, and their
 * copies when old batches went, were promoted by every young-generation
 * collection (10 KB each, twice the pause, at one line per batch).
 *
 * @module
 */

import type { HistoryLine, LineKind, RoomName } from "../core/messages.ts";
import { ByteWindow } from "./byte_window.ts";

/**
 * The smallest buffer a room's text gets, and the first sizes of its line and
 * batch tables: small, because anyone can make a room with one line in it (a
 * flood of `/join #r1`, `hi`, `/join #r2`, ... made 366,000 rooms in a minute
 * here, from 16 connections); a busy room's tables grow by doubling.
 */
const MIN_BUFFER = 256;
const MIN_LINES = 8;
const MIN_BATCHES = 2;
/**
 * What a log costs in memory besides what it keeps: its objects, its name
 * map, its smallest buffers and the room's entry in a store's map, in bytes.
 * Measured: 20,000 one-line rooms in a `MemoryStore` took 1,282 bytes of heap
 * and 384 of buffers each, after a full collection.
 */
const LOG_OVERHEAD = 1_600;
/** What one name in a log's name table costs, about (the string and its map entry). */
const NAME_OVERHEAD = 64;
const decoder = new TextDecoder();
const encoder = new TextEncoder();
/** Numbers kept per batch in `LineLog`: its first line, its first id, its time, who and how. */
const STRIDE = 4;
const KINDS: readonly LineKind[] = ["message", "action", "notice"];

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
  #ends = new Float64Array(MIN_LINES);
  /** Entries of #ends in use: one more than the lines it covers. */
  #count = 1;
  #lineBase = 0;
  #first = 0;
  #next = 0;
  // Who said a line, its kind and time are kept once per batch: batch b's
  // numbers are #batches[STRIDE * b ..]: the line it starts at, the id of that
  // line (the durable stores' row ids; the others follow), its time, and
  // KINDS.length * (who said it: an index into #names) + its kind's index in
  // KINDS. Batches before #batchHead only held dropped lines; #batchCount are
  // in use.
  #batches = new Float64Array(STRIDE * MIN_BATCHES);
  #batchCount = 0;
  #batchHead = 0;
  /** The names batches were said by, once each; `#nameIndex` finds one. */
  #names: string[] = [];
  #nameIndex = new Map<string, number>();
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
   * About how many bytes of memory the log holds for what it keeps: its text
   * and a newline a line, a number per line and four per batch, its names,
   * and its objects and smallest buffers. What a store bounds, so that a room
   * with one short line counts for what it costs; it goes down as lines are
   * dropped (the buffers' room to grow, at most as much again, is not counted).
   */
  get footprint(): number {
    return LOG_OVERHEAD + this.bytes + 9 * this.size +
      8 * STRIDE * (this.#batchCount - this.#batchHead) + NAME_OVERHEAD * this.#names.length;
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
    const batches = this.#batches;
    const end = this.#batchCount * STRIDE;
    let b = this.#batchOf(from) * STRIDE;
    for (let k = from; k < this.#next; k++) {
      while (b + STRIDE < end && batches[b + STRIDE] <= k) b += STRIDE;
      const j = k - this.#lineBase;
      const text = this.#text.view(this.#ends[j], this.#ends[j + 1] - 1); // not its newline
      const who = batches[b + 3];
      out.push({
        id: batches[b + 1] + k - batches[b],
        line: {
          room: this.room,
          time: batches[b + 2],
          from: this.#names[Math.floor(who / KINDS.length)],
          kind: KINDS[who % KINDS.length],
          text: decoder.decode(text),
        },
      });
    }
    return out;
  }

  /** The id of the oldest line kept; NaN when none is. */
  get oldestId(): number {
    if (this.size === 0) return NaN;
    const b = this.#batchOf(this.#first) * STRIDE;
    return this.#batches[b + 1] + this.#first - this.#batches[b];
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
    const batches = this.#batches;
    let lo = this.#batchHead;
    let hi = this.#batchCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (batches[mid * STRIDE] <= k) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Starts a batch whose first line, with id `firstId`, comes next. */
  #newBatch(from: string, kind: LineKind, time: number, firstId: number): void {
    if ((this.#batchCount + 1) * STRIDE > this.#batches.length) this.#growBatches();
    const name = numberName(from, this.#names, this.#nameIndex);
    const at = this.#batchCount++ * STRIDE;
    const batches = this.#batches;
    batches[at] = this.#next;
    batches[at + 1] = firstId;
    batches[at + 2] = time;
    // A kind this program does not know (a file another version wrote) reads as a message.
    batches[at + 3] = name * KINDS.length + Math.max(0, KINDS.indexOf(kind));
  }

  /**
   * Makes room in #batches for one more, moving out the batches of dropped
   * lines, or growing it; the names only those batches used go too.
   */
  #growBatches(): void {
    const head = this.#batchHead;
    const live = this.#batchCount - head;
    this.#batches = compact(this.#batches, head * STRIDE, this.#batchCount * STRIDE, STRIDE);
    this.#batchCount = live;
    this.#batchHead = 0;
    if (this.#names.length > 2 * live + 16) this.#renumberNames();
  }

  /** Keeps in #names only the names of the batches kept. */
  #renumberNames(): void {
    const names: string[] = [];
    const index = new Map<string, number>();
    const batches = this.#batches;
    for (let at = 3; at < this.#batchCount * STRIDE; at += STRIDE) {
      const from = this.#names[Math.floor(batches[at] / KINDS.length)];
      batches[at] = numberName(from, names, index) * KINDS.length + batches[at] % KINDS.length;
    }
    this.#names = names;
    this.#nameIndex = index;
  }

  /** Makes room in #ends for `n` more, moving out what was dropped, or growing it. */
  #growEnds(n: number): void {
    const dead = this.#first - this.#lineBase;
    this.#ends = compact(this.#ends, dead, this.#count, n);
    this.#count -= dead;
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

  /**
   * Forgets the batches only dropped lines were in (their room in #batches
   * is taken back when it fills: #growBatches).
   */
  #dropped(): void {
    const batches = this.#batches;
    const count = this.#batchCount;
    let head = this.#batchHead;
    while (head + 1 < count && batches[(head + 1) * STRIDE] <= this.#first) head++;
    if (this.size === 0 && head < count && batches[head * STRIDE] < this.#first) head = count;
    this.#batchHead = head;
  }
}

/**
 * `array[from..to)` moved to the front of `array`, which is kept unless they
 * and `more` entries after them would fill over half of it; then to the front
 * of a new array twice as large (or more) as those need.
 */
function compact(
  array: Float64Array<ArrayBuffer>,
  from: number,
  to: number,
  more: number,
): Float64Array<ArrayBuffer> {
  let size = array.length;
  while (size < 2 * (to - from + more)) size *= 2;
  const out = size > array.length ? new Float64Array(size) : array;
  out.set(array.subarray(from, to));
  return out;
}

/** The number of `name` in `names` (found through `index`), added at the end if new. */
function numberName(name: string, names: string[], index: Map<string, number>): number {
  let number = index.get(name);
  if (number === undefined) {
    number = names.length;
    names.push(name);
    index.set(name, number);
  }
  return number;
}
