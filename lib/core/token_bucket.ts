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

/**
 * A byte budget: `rate` bytes per second, with a burst of `burst` bytes. Unlike
 * a {@linkcode TokenBucket} nothing is refused: spending past the budget puts
 * it in debt (down to `-burst`), and the caller treats whoever is in debt as a
 * heavy sender. The debt is bounded so that someone who stops sending is light
 * again within `2 * burst / rate` seconds.
 *
 * @example
 * ```ts
 * import { ByteBudget } from "./token_bucket.ts";
 * import assert from "node:assert/strict";
 *
 * const budget = new ByteBudget(1000, 4000, 0);
 * assert.equal(budget.spend(0, 3000), true); // within the burst
 * assert.equal(budget.spend(0, 3000), false); // in debt: heavy
 * assert.equal(budget.debtTime(0), 2000); // two seconds to pay the debt back
 * assert.equal(budget.spend(3000, 10), true); // three seconds later, light again
 * ```
 */
export class ByteBudget {
  /** Bytes per second that may be spent without going into debt. */
  readonly rate: number;
  /** Bytes that may be spent at once, and the most debt kept. */
  readonly burst: number;
  /** Bytes left at `#time` (negative: in debt). */
  #level: number;
  #time: number;

  /** A full budget at time `now` (milliseconds). */
  constructor(rate: number, burst: number, now: number) {
    if (!(rate > 0)) throw new RangeError(`Invalid rate "${rate}": must be above 0`);
    if (!(burst > 0)) throw new RangeError(`Invalid burst "${burst}": must be above 0`);
    this.rate = rate;
    this.burst = burst;
    this.#level = burst;
    this.#time = now;
  }

  /** Milliseconds from `now` until the budget is out of debt; 0 when it is not in debt. */
  debtTime(now: number): number {
    const level = this.#level + Math.max(0, now - this.#time) * this.rate / 1000;
    return level >= 0 ? 0 : Math.ceil(-level * 1000 / this.rate);
  }

  /** Spends `bytes` at time `now` (milliseconds); false when that leaves the budget in debt. */
  spend(now: number, bytes: number): boolean {
    const elapsed = Math.max(0, now - this.#time);
    this.#time = now;
    this.#level = Math.max(
      -this.burst,
      Math.min(this.burst, this.#level + elapsed * this.rate / 1000) - bytes,
    );
    return this.#level >= 0;
  }
}
