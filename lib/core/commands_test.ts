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

Deno.test("CommandTime charges each command at least minMs: a flood of instant commands waits", () => {
  const time = new CommandTime({ msPerSecond: 20, burstMs: 5, minMs: 0.05 });
  // 90 commands that take next to nothing fit in the 5 ms burst...
  for (let i = 0; i < 90; i++) time.charge(performance.now());
  assert.equal(time.wait(), undefined);
  // ...and some more do not, however fast each one ran.
  for (let i = 0; i < 20; i++) time.charge(performance.now());
  const wait = time.wait();
  assert.ok(wait instanceof Promise);
  time.stop();
  // Charged only what each took, the same 110 never wait.
  const measured = new CommandTime({ msPerSecond: 20, burstMs: 5 });
  for (let i = 0; i < 110; i++) measured.charge(performance.now());
  assert.equal(measured.wait(), undefined);
});
