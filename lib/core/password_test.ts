import assert from "node:assert/strict";
import { type PasswordVerdict, ServerPassword } from "./password.ts";

/** A clock the test moves. */
function clock(): { now: () => number; advance(ms: number): void } {
  let now = 1_000_000;
  return { now: () => now, advance: (ms) => now += ms };
}

/** Whether `promise` has settled by the time the timers and I/O of one turn have run. */
async function settledSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  return settled;
}

Deno.test("ServerPassword answers the right password at once and a wrong one only after its delay", async () => {
  const password = new ServerPassword("s3cret", { delayMs: 200 });
  assert.equal(await settledSoon(password.check("192.0.2.1", "s3cret")), true);
  assert.deepEqual(await password.check("192.0.2.1", "s3cret"), { ok: true });
  const wrong = password.check("192.0.2.1", "s3cre");
  assert.equal(await settledSoon(wrong), false, "a wrong password is not answered at once");
  assert.deepEqual(await wrong, { ok: false, reason: "wrong", text: "wrong password" });
});

Deno.test("ServerPassword compares whole passwords of any length, bytes not characters", async () => {
  const password = new ServerPassword("contraseña 🔑", { delayMs: 0 });
  assert.equal((await password.check("h", "contraseña 🔑")).ok, true);
  for (const attempt of ["", "contraseña", "contrasena 🔑", "contraseña 🔑 ", "x".repeat(10_000)]) {
    assert.equal((await password.check(`h${attempt.length}`, attempt)).ok, false, attempt);
  }
  assert.throws(() => new ServerPassword(""), RangeError);
});

Deno.test("ServerPassword throttles an address after repeated failures, and only that address", async () => {
  const time = clock();
  const password = new ServerPassword("s3cret", {
    delayMs: 0,
    maxFailures: 5,
    windowMs: 60_000,
    blockMs: 60_000,
    now: time.now,
  });
  for (let i = 0; i < 4; i++) {
    assert.equal((await password.check("192.0.2.1", `guess${i}`)).ok, false);
  }
  // Four failures: the right password still works.
  assert.equal((await password.check("192.0.2.1", "s3cret")).ok, true);
  assert.equal((await password.check("192.0.2.1", "guess4")).ok, false);
  // The fifth: even the right password is refused now, and said so.
  const verdict: PasswordVerdict = await password.check("192.0.2.1", "s3cret");
  assert.deepEqual(verdict, {
    ok: false,
    reason: "throttled",
    text: "too many wrong passwords; try again in 60 s",
    retryAfter: 60,
  });
  assert.equal((await password.check("192.0.2.2", "s3cret")).ok, true, "another address");
  time.advance(59_001);
  assert.equal(password.retryAfter("192.0.2.1"), 1);
  time.advance(1_000);
  assert.equal((await password.check("192.0.2.1", "s3cret")).ok, true, "the block ended");
});

Deno.test("ServerPassword counts failures within the window only", async () => {
  const time = clock();
  const password = new ServerPassword("s3cret", { delayMs: 0, maxFailures: 3, now: time.now });
  await password.check("h", "a");
  await password.check("h", "b");
  time.advance(60_000); // those two are out of the window now
  await password.check("h", "c");
  await password.check("h", "d");
  assert.equal((await password.check("h", "s3cret")).ok, true);
});

Deno.test("ServerPassword remembers a bounded number of addresses, keeping those still blocked", async () => {
  const password = new ServerPassword("s3cret", { delayMs: 0, maxFailures: 2, maxAddresses: 3 });
  await password.check("blocked", "a");
  await password.check("blocked", "b");
  assert.ok(password.retryAfter("blocked") > 0);
  for (let i = 0; i < 100; i++) await password.check(`192.0.2.${i}`, "x");
  assert.equal(password.tracked, 3);
  assert.ok(password.retryAfter("blocked") > 0, "a flood of other addresses does not lift a block");
});
