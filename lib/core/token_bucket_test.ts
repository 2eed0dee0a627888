import assert from "node:assert/strict";
import { TokenBucket } from "./token_bucket.ts";

Deno.test("TokenBucket allows a burst of one second's worth, then drops", () => {
  const bucket = new TokenBucket(5, 1000);
  const taken = Array.from({ length: 8 }, () => bucket.take(1000));
  assert.deepEqual(taken, [true, true, true, true, true, false, false, false]);
});

Deno.test("TokenBucket refills at its rate and never above one second's worth", () => {
  const bucket = new TokenBucket(10, 0);
  for (let i = 0; i < 10; i++) bucket.take(0);
  assert.equal(bucket.take(50), false); // half a token
  assert.equal(bucket.take(100), true); // one token after 100 ms
  assert.equal(bucket.take(100), false);
  // A long pause refills to 10, not more.
  const after = Array.from({ length: 11 }, () => bucket.take(60_000));
  assert.equal(after.filter(Boolean).length, 10);
});

Deno.test("TokenBucket keeps a steady sender at its rate exactly", () => {
  const bucket = new TokenBucket(4, 0);
  let passed = 0;
  // 40 lines a second for 10 seconds, after the first second's burst.
  for (let t = 0; t < 10_000; t += 25) if (bucket.take(t)) passed++;
  assert.equal(passed, 4 + 4 * 10 - 1);
});

Deno.test("TokenBucket refuses a rate that is not positive", () => {
  assert.throws(() => new TokenBucket(0, 0), RangeError);
  assert.throws(() => new TokenBucket(Number.NaN, 0), RangeError);
});
