import assert from "node:assert/strict";
import { HeldInput, type HeldInputOwner } from "./held_input.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string) => encoder.encode(text);

/** An owner that records what ran and lets each test decide who must wait. */
class Recorder implements HeldInputOwner {
  ran: string[] = [];
  flushes = 0;
  ended = false;
  /** Lines that must wait for this promise (once each), by text. */
  waits = new Map<string, Promise<unknown>>();
  /** Lines whose handling holds input until this promise settles. */
  later = new Map<string, Promise<unknown>>();
  held!: HeldInput;
  /** Settles, with the lines run so far, when a line is told to wait. */
  waiting = Promise.withResolvers<string[]>();

  mustWait(line: Uint8Array): Promise<unknown> | undefined {
    const text = decoder.decode(line);
    const wait = this.waits.get(text);
    this.waits.delete(text);
    if (wait !== undefined) this.waiting.resolve([...this.ran]);
    return wait;
  }
  handle(line: Uint8Array): void {
    const text = decoder.decode(line);
    this.ran.push(text);
    const later = this.later.get(text);
    if (later !== undefined) this.held.until(later);
  }
  flushOut(): void {
    this.flushes++;
  }
  drained(): Promise<unknown> | undefined {
    return undefined;
  }
  gone(): boolean {
    return this.ended;
  }
}

function setup(): { owner: Recorder; held: HeldInput } {
  const owner = new Recorder();
  const held = new HeldInput(owner);
  owner.held = held;
  return { owner, held };
}

Deno.test("HeldInput: lines pushed while waiting run after the wait, in order", async () => {
  const { owner, held } = setup();
  const gate = Promise.withResolvers<void>();
  assert.equal(held.holding, false);
  assert.equal(held.pending, null);
  held.wait(gate.promise);
  assert.equal(held.holding, true);
  assert.equal(owner.flushes, 1, "replies so far go out before input waits");
  const buf = bytes("xaby");
  held.push(buf, 1, 2);
  held.push(buf, 2, 3);
  buf.fill(0); // held lines are copies: the read buffer is reused
  const pending = held.pending;
  assert.notEqual(pending, null);
  assert.deepEqual(owner.ran, []);
  gate.resolve();
  await pending;
  assert.deepEqual(owner.ran, ["a", "b"]);
  assert.equal(held.holding, false);
  assert.equal(held.pending, null);
});

Deno.test("HeldInput: a held line that must wait holds the rest behind it", async () => {
  const { owner, held } = setup();
  const first = Promise.withResolvers<void>();
  const second = Promise.withResolvers<void>();
  owner.waits.set("b", second.promise);
  held.wait(first.promise);
  for (const text of ["a", "b", "c"]) held.push(bytes(text), 0, 1);
  // The read loop's promise follows "b"'s wait: it settles once all ran.
  const ran = held.pending!.then(() => [...owner.ran]);
  first.resolve();
  assert.deepEqual(await owner.waiting.promise, ["a"]);
  assert.equal(held.holding, true, "'b' waits, and 'c' behind it");
  held.push(bytes("d"), 0, 1); // read while "b" waits: after "c"
  second.resolve();
  assert.deepEqual(await ran, ["a", "b", "c", "d"]);
  assert.equal(held.holding, false);
});

Deno.test("HeldInput: a command that finishes later holds what follows it", async () => {
  const { owner, held } = setup();
  const claim = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  owner.later.set("/nick ana", claim.promise);
  held.wait(gate.promise);
  for (const text of ["hola", "/nick ana", "soy ana"]) held.push(bytes(text), 0, text.length);
  const pending = held.pending;
  gate.resolve();
  // Once "/nick ana" holds input again, the promise the read loop waits on is
  // the claim's: it settles only after "soy ana" ran.
  const waited = pending!.then(() => [...owner.ran]);
  claim.resolve();
  assert.deepEqual(await waited, ["hola", "/nick ana", "soy ana"]);
});

Deno.test("HeldInput: until() runs what waited after its callback; false drops it", async () => {
  const { owner, held } = setup();
  const check = Promise.withResolvers<boolean>();
  const calls: string[] = [];
  held.until(check.promise, (ok) => {
    calls.push(`then ${ok} with ${held.holding ? "input held" : "nothing held"}`);
    return ok;
  });
  held.push(bytes("a"), 0, 1);
  const pending = held.pending;
  check.resolve(false);
  await pending;
  assert.deepEqual(calls, ["then false with nothing held"]);
  assert.deepEqual(owner.ran, [], "a refused password drops what came after it");
  assert.equal(held.holding, false);

  const again = Promise.withResolvers<boolean>();
  held.until(again.promise, (ok) => ok);
  held.push(bytes("b"), 0, 1);
  const next = held.pending;
  again.resolve(true);
  await next;
  assert.deepEqual(owner.ran, ["b"]);
});

Deno.test("HeldInput: what waited goes before what a callback's own hold gets", async () => {
  const { owner, held } = setup();
  const check = Promise.withResolvers<void>();
  const claim = Promise.withResolvers<void>();
  held.until(check.promise, () => {
    held.until(claim.promise); // registration claims a name in a shared store
    held.push(bytes("later"), 0, 5);
  });
  held.push(bytes("early"), 0, 5);
  // The read loop's promise settles once both ran: it follows the claim.
  const ran = held.pending!.then(() => [...owner.ran]);
  check.resolve();
  claim.resolve();
  assert.deepEqual(await ran, ["early", "later"]);
  assert.equal(held.holding, false);
});

Deno.test("HeldInput: nothing more runs once the owner is gone", async () => {
  const { owner, held } = setup();
  const gate = Promise.withResolvers<void>();
  held.wait(gate.promise);
  for (const text of ["a", "b"]) held.push(bytes(text), 0, 1);
  owner.handle = (line) => {
    owner.ran.push(decoder.decode(line));
    owner.ended = true;
  };
  const pending = held.pending;
  gate.resolve();
  await pending;
  assert.deepEqual(owner.ran, ["a"]);
});

Deno.test("HeldInput: the read loop waits for the session and for the held lines", async () => {
  const { held } = setup();
  const session = Promise.resolve("session");
  assert.equal(held.andHeld(undefined), undefined, "nothing to wait for");
  assert.equal(held.andHeld(session), session, "only the session's wait");
  const gate = Promise.withResolvers<void>();
  held.wait(gate.promise);
  assert.equal(held.andHeld(undefined), held.pending, "only the held lines");
  const both = held.andHeld(session);
  assert.notEqual(both, session);
  let settled = false;
  both!.then(() => settled = true);
  await session;
  await Promise.resolve();
  assert.equal(settled, false, "still waits for the held lines");
  gate.resolve();
  await both;
  assert.equal(settled, true);
});
