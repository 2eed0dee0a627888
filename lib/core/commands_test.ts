import assert from "node:assert/strict";
import { CommandTime } from "./commands.ts";

Deno.test("CommandTime: asked twice while in debt, one wait, which stop() ends", () => {
  const time = new CommandTime({ msPerSecond: 20, burstMs: 5 });
  time.charge(performance.now() - 50); // a command that took 50 ms
  const first = time.wait();
  assert.ok(first instanceof Promise);
  // A second caller gets the same wait, not a second timer that stop() would
  // not know of (the test's sanitizer fails on a timer left behind).
  assert.equal(time.wait(), first);
  time.stop();
});

Deno.test("CommandTime: once the debt is repaid, no wait", async () => {
  const time = new CommandTime({ msPerSecond: 1000, burstMs: 1 });
  time.charge(performance.now() - 3); // 2 ms past the burst: repaid in about 2 ms
  const wait = time.wait();
  assert.ok(wait instanceof Promise);
  await wait;
  assert.equal(time.wait(), undefined);
});
