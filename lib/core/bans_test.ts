import assert from "node:assert/strict";
import {
  BanList,
  bannedText,
  type BanTarget,
  formatUntil,
  hostOf,
  parseBanMask,
  parseDuration,
} from "./bans.ts";
import { MemoryStore } from "../store/memory.ts";

/** A mask that must parse. */
function mask(text: string): BanTarget {
  const target = parseBanMask(text);
  if (typeof target === "string") throw new Error(target);
  return target;
}

/** A clock the test moves. */
function clock(
  start = Date.UTC(2026, 10, 28, 12),
): { now: () => number; advance(ms: number): void } {
  let now = start;
  return { now: () => now, advance: (ms) => now += ms };
}

Deno.test("parseBanMask() tells names, addresses and networks apart, in canonical form", () => {
  assert.deepEqual(parseBanMask("ana_1"), { kind: "name", mask: "ana_1" });
  assert.equal(mask("192.0.2.7").mask, "192.0.2.7");
  assert.equal(mask("192.0.2.7/32").mask, "192.0.2.7/32");
  assert.equal(mask("10.9.8.7/8").mask, "10.0.0.0/8");
  assert.equal(mask("2001:DB8::1").mask, "2001:db8::1");
  assert.equal(mask("2001:db8::/32").mask, "2001:db8::/32");
  // An IPv4-mapped form is the IPv4 address or network it carries.
  assert.equal(mask("::ffff:192.0.2.7").mask, "192.0.2.7");
  assert.equal(mask("::ffff:10.0.0.0/104").mask, "10.0.0.0/8");
  for (const bad of ["1234", "a b", "10.0.0.0/33", "", "name!", "#room"]) {
    assert.equal(typeof parseBanMask(bad), "string", bad);
  }
  assert.equal(
    parseBanMask("10.0.0.0/33"),
    'invalid network "10.0.0.0/33": prefix must be 0-32 for IPv4',
  );
});

Deno.test("parseDuration() reads s, m, h, d and w and refuses anything else", () => {
  assert.equal(parseDuration("30s"), 30_000);
  assert.equal(parseDuration("10m"), 600_000);
  assert.equal(parseDuration("2h"), 7_200_000);
  assert.equal(parseDuration("7d"), 604_800_000);
  assert.equal(parseDuration("1w"), 604_800_000);
  for (const bad of ["0m", "10", "m", "1.5h", "10x", "-1h", "1234567d"]) {
    assert.equal(parseDuration(bad), null, bad);
  }
});

Deno.test("BanList matches addresses against addresses and networks, IPv4-mapped or not", () => {
  const bans = new BanList(new MemoryStore());
  bans.add(mask("192.0.2.7"), { reason: "one" });
  bans.add(mask("10.0.0.0/8"), { reason: "net" });
  bans.add(mask("2001:db8::/32"), { reason: "six" });
  assert.equal(bans.forAddress("192.0.2.7")?.reason, "one");
  assert.equal(bans.forAddress("::ffff:192.0.2.7")?.reason, "one");
  assert.equal(bans.forAddress("192.0.2.8"), null);
  assert.equal(bans.forAddress("10.255.0.1")?.reason, "net");
  assert.equal(bans.forAddress("11.0.0.1"), null);
  assert.equal(bans.forAddress("2001:db8:1::5")?.reason, "six");
  assert.equal(bans.forAddress("2001:db9::5"), null);
  // Not an address (a Unix socket): never banned by address.
  assert.equal(bans.forAddress("unix:/tmp/s"), null);
});

Deno.test("BanList keeps a banned name's look-alikes out, and lifts the ban by any of them", () => {
  const bans = new BanList(new MemoryStore());
  bans.add(mask("alice"), { reason: "spam" });
  for (const name of ["alice", "ALICE", "AIice", "a1ice", "aIIce"]) {
    assert.equal(bans.forName(name)?.mask, "alice", name);
  }
  assert.equal(bans.forName("alicia"), null);
  assert.equal(bans.remove("A1ICE")?.mask, "alice");
  assert.equal(bans.forName("alice"), null);
  assert.equal(bans.remove("alice"), null);
});

Deno.test("BanList lets a ban end at its time, in memory and in the store", () => {
  const time = clock();
  const store = new MemoryStore();
  const bans = new BanList(store, { now: time.now });
  bans.add(mask("192.0.2.0/24"), { durationMs: 10 * 60_000, reason: "10 minutes" });
  bans.add(mask("ana"), { durationMs: 60_000 });
  bans.add(mask("bea"));
  assert.equal(bans.size, 3);
  time.advance(59_999);
  assert.notEqual(bans.forName("ana"), null);
  time.advance(1);
  assert.equal(bans.forName("ana"), null, "ended at its time");
  assert.notEqual(bans.forAddress("192.0.2.1"), null);
  time.advance(9 * 60_000);
  assert.equal(bans.forAddress("192.0.2.1"), null);
  assert.deepEqual(bans.list().map((b) => b.mask), ["bea"]);
  // Ended bans are dropped from the store too, not only skipped.
  assert.deepEqual(store.bans().map((b) => b.mask), ["bea"]);
});

Deno.test("BanList writes through its store: a new list on the same store holds the same bans", () => {
  const store = new MemoryStore();
  const first = new BanList(store);
  first.add(mask("ana"), { reason: "spam" });
  first.add(mask("10.0.0.0/8"), { durationMs: 3_600_000 });
  first.add(mask("bea"));
  first.remove("bea");
  const second = new BanList(store);
  second.load();
  assert.deepEqual(second.list().map((b) => [b.mask, b.kind, b.reason]), [
    ["ana", "name", "spam"],
    ["10.0.0.0/8", "address", ""],
  ]);
  assert.notEqual(second.forAddress("10.1.1.1"), null);
});

Deno.test("BanList.add() replaces a ban on a look-alike name rather than keeping two", () => {
  const store = new MemoryStore();
  const bans = new BanList(store);
  bans.add(mask("alice"), { reason: "first" });
  bans.add(mask("AIice"), { reason: "second" });
  assert.deepEqual(bans.list().map((b) => [b.mask, b.reason]), [["AIice", "second"]]);
  assert.deepEqual(store.bans().map((b) => b.mask), ["AIice"]);
});

Deno.test("bannedText() says why and until when, today as HH:MM, another day with its date", () => {
  const now = new Date(2026, 10, 28, 12, 0).getTime();
  const ban = { mask: "ana", kind: "name", reason: "spam", since: now, until: null } as const;
  assert.equal(bannedText(ban, now), "you are banned: spam");
  const later = new Date(2026, 10, 28, 18, 5).getTime();
  assert.equal(bannedText({ ...ban, until: later }, now), "you are banned: spam (until 18:05)");
  const tomorrow = new Date(2026, 10, 29, 9, 30).getTime();
  assert.equal(formatUntil(tomorrow, now), "2026-11-29 09:30");
});

Deno.test("hostOf() takes the host out of an address as people write it", () => {
  assert.equal(hostOf("192.0.2.7:5000"), "192.0.2.7");
  assert.equal(hostOf("[2001:db8::1]:5000"), "2001:db8::1");
  assert.equal(hostOf("[::ffff:127.0.0.1]:5000"), "::ffff:127.0.0.1");
  assert.equal(hostOf("unix:(unnamed)"), null);
  assert.equal(hostOf("example.org:5000"), null);
});
