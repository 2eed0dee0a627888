/**
 * Bytes addressed by their offset since a stream of them began, in one buffer
 * that keeps the newest: the history's text (`LineLog`). Moving the
 * kept bytes to the front of the buffer changes one number (`base`), not one
 * per line or run that points into them.
 *
 * @example
 * ```ts
 * import { ByteWindow } from "./byte_window.ts";
 * import assert from "node:assert/strict";
 *
 * const window = new ByteWindow(8);
 * window.reserve(6, 0);
 * window.bytes.set([1, 2, 3, 4, 5, 6], window.used);
 * window.used += 6;
 * window.reserve(6, 4); // offsets 0-3 may go
 * assert.deepEqual([...window.view(4, 6)], [5, 6]);
 * assert.equal(window.base + window.used, 6);
 * ```
 *
 * @module
 */

/** A buffer of the bytes from offset `base` on; see the module doc. */
export class ByteWindow {
  /** The buffer: `bytes[0..used)` are the bytes from offset `base` on. */
  bytes: Uint8Array = new Uint8Array(0);
  base = 0;
  used = 0;
  readonly #minSize: number;

  /** A window whose buffer is at least `minSize` bytes once used. */
  constructor(minSize: number) {
    this.#minSize = minSize;
  }

  /** The bytes from offset `from` to offset `to`, as a view. */
  view(from: number, to: number): Uint8Array {
    return this.bytes.subarray(from - this.base, to - this.base);
  }

  /**
   * Makes room for `length` more bytes after those in use, keeping those from
   * offset `keep` on: they move to the front of the buffer (a larger one when
   * they would fill more than half of it), a copy of what is kept each time
   * the buffer fills, which the bytes written since paid for.
   */
  reserve(length: number, keep: number): void {
    if (this.used + length <= this.bytes.length) return;
    const from = keep - this.base;
    const live = this.used - from;
    let size = this.#minSize;
    while (size < 2 * (live + length)) size *= 2;
    if (size > this.bytes.length) {
      const other = new Uint8Array(size);
      other.set(this.bytes.subarray(from, this.used));
      this.bytes = other;
    } else {
      this.bytes.copyWithin(0, from, this.used);
    }
    this.base += from;
    this.used = live;
  }
}
