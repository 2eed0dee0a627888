/**
 * Rate limiting for `--flood`: a token bucket per client, pure (the caller says
 * what time it is), so it can be tested without waiting.
 *
 * @module
 */

/**
 * A token bucket: `rate` tokens per second, holding at most `rate` (one second
 * of burst). Each line takes a token; a line that finds none is dropped.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./token_bucket.ts";
 * import assert from "node:assert/strict";
 *
 * const bucket = new TokenBucket(2, 0);
 * assert.deepEqual([bucket.take(0), bucket.take(0), bucket.take(0)], [true, true, false]);
 * assert.equal(bucket.take(500), true); // half a second brings one token back
 * ```
 */
export class TokenBucket {
  /** Tokens per second, and the most the bucket holds. */
  readonly rate: number;
  /** Tokens available at `#time`. */
  #tokens: number;
  /** When `#tokens` was last brought up to date, in milliseconds. */
  #time: number;

  /** A full bucket of `rate` tokens per second, at time `now` (milliseconds). */
  constructor(rate: number, now: number) {
    if (!(rate > 0)) throw new RangeError(`Invalid rate "${rate}": must be above 0`);
    this.rate = rate;
    this.#tokens = rate;
    this.#time = now;
  }

  /** Takes one token at time `now` (milliseconds); false when there is none. */
  take(now: number): boolean {
    const elapsed = Math.max(0, now - this.#time);
    this.#tokens = Math.min(this.rate, this.#tokens + elapsed * this.rate / 1000);
    this.#time = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
