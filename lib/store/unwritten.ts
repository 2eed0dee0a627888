/**
 * The SQLite store's lines on their way to the file, as bytes in runs: the
 * lines one person said in one room, of one kind, at one time, back to back,
 * each followed by "\n" (line text never holds a newline: the core shows
 * control characters as `^J`). A run is one row of the file, so the writer
 * makes one row per run rather than one per line, and the chat thread makes
 * no string or object per line: a relayed batch (whose text already ends each
 * line with a newline) costs one copy into the queue, and one more into what
 * goes to the writer.
 *
 * A run's bytes are in a block of 256 KiB, filled in order, the blocks from a
 * pool they go back to once every run in them is written: a burst that the
 * writer falls behind on (3 MB waiting at 250,000 lines a second) reuses
 * memory rather than growing one buffer into fresh pages, whose first-touch
 * page faults (about 14 µs per 4 KiB page on the VM this was measured on) cost
 * more than the copies. A batch's runs stay until the writer says they are
 * written ({@linkcode Unwritten.written}), or go back to waiting when the
 * write failed ({@linkcode Unwritten.rewind}).
 *
 * @module
 */

import type { HistoryLine, LineKind } from "../core/messages.ts";
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
  /** The block its bytes are in, at `[start, end)`. */
  readonly block: Block;
  start: number;
  end: number;
}

/** A block of bytes, and how many runs have bytes in it. */
interface Block {
  readonly bytes: Uint8Array;
  runs: number;
}

/** A line's id and the line, as `recent()` puts history together. */
export interface Entry {
  readonly id: number;
  readonly line: HistoryLine;
}

const NEWLINE = 0x0a;
/** A block's size; a run larger than this (never from the relay) gets a block of its own. */
const BLOCK = 256 * 1024;
/** Free blocks kept for the next burst (4 MiB); more go to the garbage collector. */
const FREE_BLOCKS = 16;
const freeBlocks: Uint8Array[] = [];
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
  /** The block being filled, and how much of it is. */
  #block: Block | null = null;
  #used = 0;
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
    // The batch's text is already as a run keeps it: each line and its newline.
    const length = batch.text.length;
    const run = this.#runFor(id, room, name, batch.kind, batch.time, length);
    const src = batch.text.bytes;
    run.block.bytes.set(length === src.length ? src : src.subarray(0, length), this.#used);
    this.#added(run, count, this.#used + length);
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
    run.block.bytes.set(bytes, this.#used);
    run.block.bytes[this.#used + bytes.length] = NEWLINE;
    this.#added(run, 1, this.#used + bytes.length + 1);
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
    const described: [number, string, string, string, number, number, number][] = [];
    let length = 0;
    for (let i = first; i < this.#sent; i++) {
      const r = this.#runs[i];
      described.push([r.id, r.room, r.name, r.kind, r.time, r.count, r.end - r.start]);
      length += r.end - r.start;
    }
    // One view of the buffer, no more: V8 detaches a buffer with a single view
    // (as postMessage does when it moves it) by updating that view, but one
    // with two invalidates what this thread's compiled code assumes (that no
    // buffer is ever detached): every function that reads a typed array, the
    // chat's framing among them, is thrown away and compiled again, mid-burst.
    const buffer = into !== null && into.byteLength >= length
      ? into
      : new ArrayBuffer(Math.max(length, 64 * 1024));
    const bytes = new Uint8Array(buffer, 0, length);
    let at = 0;
    for (let i = first; i < this.#sent; i++) {
      const r = this.#runs[i];
      bytes.set(r.block.bytes.subarray(r.start, r.end), at);
      at += r.end - r.start;
    }
    return { bytes, runs: described };
  }

  /** The batch at the writer was written: its lines go. */
  written(): void {
    for (let i = this.#head; i < this.#sent; i++) this.#leave(this.#runs[i].block);
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
    for (let i = this.#sent; i < end; i++) this.#leave(this.#runs[i].block);
    this.#runs.splice(this.#sent, end - this.#sent);
    this.#lines -= lines - left;
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
        const text = decoder.decode(run.block.bytes.subarray(run.start, run.end - 1));
        for (const entry of runEntries(run, text)) if (entry.id < before) out.push(entry);
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
    let block = this.#block;
    if (block === null || this.#used + bytes > block.bytes.length) {
      // The rest of the block stays unused: a run's bytes are in one block.
      if (block !== null && block.runs === 0) giveBlock(block.bytes);
      block = this.#block = {
        bytes: bytes > BLOCK ? new Uint8Array(bytes) : freeBlocks.pop() ?? new Uint8Array(BLOCK),
        runs: 0,
      };
      this.#used = 0;
    }
    const last = this.#runs.length > this.#sent ? this.#runs[this.#runs.length - 1] : undefined;
    if (
      last !== undefined && last.id + last.count === id && last.room === room &&
      last.name === name && last.kind === kind && last.time === time &&
      last.block === block && last.end === this.#used
    ) return last;
    const at = this.#used;
    const since = performance.now();
    const run = { id, room, name, kind, time, since, count: 0, block, start: at, end: at };
    block.runs++;
    this.#runs.push(run);
    return run;
  }

  /** `count` lines were written into `run`, up to `used`. */
  #added(run: Run, count: number, used: number): void {
    this.#used = used;
    run.end = used;
    run.count += count;
    this.#lines += count;
  }

  /** Splits run `i` in two, its first `count` lines and the rest. */
  #split(i: number, count: number): void {
    const run = this.#runs[i];
    const buffer = run.block.bytes;
    let at = run.start;
    // A loop rather than indexOf(), which costs about 200 ns a call here.
    for (let n = 0; n < count; n++) while (buffer[at++] !== NEWLINE);
    const rest = { ...run, id: run.id + count, count: run.count - count, start: at };
    run.count = count;
    run.end = at;
    run.block.runs++;
    this.#runs.splice(i + 1, 0, rest);
  }

  /** A run in `block` is gone: the block goes back to the pool once none is left in it. */
  #leave(block: Block): void {
    if (--block.runs === 0 && block !== this.#block) giveBlock(block.bytes);
  }
}

/**
 * The lines of a run, with their ids, from `text`: its lines joined by
 * newlines (as it is queued, and as a row of the file keeps it).
 */
export function runEntries(
  run: { id: number; room: string; name: string; kind: LineKind; time: number },
  text: string,
): Entry[] {
  return text.split("\n").map((line, i) => ({
    id: run.id + i,
    line: { room: run.room, time: run.time, from: run.name, kind: run.kind, text: line },
  }));
}

/**
 * Fills the pool of free blocks, their pages written to, as the first burst
 * after a start would leave it, so that that burst costs what later ones do
 * rather than a page fault per 4 KiB (14-20 blocks were made during a fresh
 * server's first burst of 250,000 lines, 10 senders and 10 clients). The pool
 * is the 4 MiB a burst leaves anyway, kept for the process's life.
 */
export function fillPool(): void {
  while (freeBlocks.length < FREE_BLOCKS) freeBlocks.push(new Uint8Array(BLOCK).fill(0));
}

/**
 * A buffer of `bytes` bytes whose pages are written to (see {@linkcode fillPool}),
 * with no view on it: {@linkcode Unwritten.take} makes the only one.
 */
export function touchedBuffer(bytes: number): ArrayBuffer {
  // transfer() moves the memory to a new buffer without copying it, and the
  // view that wrote to it stays with the old one.
  return new Uint8Array(bytes).fill(0).buffer.transfer();
}

/** Puts a block back in the pool, unless it is a large one of its own or the pool is full. */
function giveBlock(bytes: Uint8Array): void {
  if (bytes.length === BLOCK && freeBlocks.length < FREE_BLOCKS) freeBlocks.push(bytes);
}
