import assert from "node:assert/strict";
import { SaidBatch } from "../core/peer.ts";
import { LineLog } from "./line_log.ts";
import { MemoryStore } from "./memory.ts";
import { MAX_TOPICS } from "./store.ts";

const encoder = new TextEncoder();

/** One batch, reused: what the relay makes of a read. */
const shared = new SaidBatch();

/** `lines` as a batch, as the relay makes them. */
function batch(lines: string[], kind: "message" | "action" = "message", time = 1): SaidBatch {
  shared.clear();
  for (const line of lines) {
    shared.text.append(encoder.encode(line));
    shared.endLine();
  }
  shared.kind = kind;
  shared.time = time;
  return shared;
}

Deno.test("LineLog keeps the last lines in order across many moves of its buffer", () => {
  const log = new LineLog("#lobby", { keep: 1000, maxBytes: 1 << 20 });
  const text = (n: number) => `n${n} ${"x".repeat(n % 300)} ñ`;
  for (let n = 0; n < 20_000; n += 4) {
    log.append("ana", batch([text(n), text(n + 1), text(n + 2), text(n + 3)]));
  }
  const last = log.last(1000);
  assert.equal(last.length, 1000);
  for (const [i, line] of last.entries()) assert.equal(line.text, text(19_000 + i));
  assert.deepEqual(log.last(2).map((l) => l.text), [text(19_998), text(19_999)]);
});

Deno.test("LineLog keeps at most maxBytes of text, but always the newest line", () => {
  const log = new LineLog("#big", { keep: 100, maxBytes: 1000 });
  for (let i = 0; i < 10; i++) log.append("ana", batch([`${i}`.repeat(300)]));
  assert.ok(log.bytes <= 1000);
  assert.deepEqual(log.last(10).map((l) => l.text[0]), ["7", "8", "9"]);
  log.append("ana", batch(["z".repeat(5000)]));
  assert.deepEqual(log.last(10).map((l) => l.text.length), [5000]);
});

Deno.test("LineLog keeps who said it, the kind and the time", () => {
  const log = new LineLog("#lobby", { keep: 10, maxBytes: 1000 });
  log.append("ana", batch(["saluda"], "action", 42));
  log.appendText("server", "notice", 43, "hola a todos");
  assert.deepEqual(log.last(5), [
    { room: "#lobby", time: 42, from: "ana", kind: "action", text: "saluda" },
    { room: "#lobby", time: 43, from: "server", kind: "notice", text: "hola a todos" },
  ]);
});

Deno.test("LineLog keeps who said each line after it drops its oldest lines many times", () => {
  // Each line its own batch, from a different name: a compaction that lost
  // track of the first kept batch gave the kept lines no name, kind or time.
  const log = new LineLog("#lobby", { keep: 100, maxBytes: 1 << 20 });
  for (let i = 0; i < 1_000; i++) log.appendText(`u${i}`, "message", i, `l${i}`);
  const last = log.last(100);
  assert.equal(last.length, 100);
  for (const [i, line] of last.entries()) {
    assert.deepEqual(line, {
      room: "#lobby",
      time: 900 + i,
      from: `u${900 + i}`,
      kind: "message",
      text: `l${900 + i}`,
    });
  }
});

Deno.test("LineLog keeps names, kinds and times as its table of names is renumbered", () => {
  // Three regulars and a stream of newcomers: the names only dropped lines
  // used are forgotten (many times here), those of kept lines stay theirs.
  const kinds = ["message", "action", "notice"] as const;
  const who = (i: number) => i % 7 === 0 ? `new${i}` : ["ana", "bea", "carlos"][i % 3];
  const time = (i: number) => 1_795_000_000_000 + i * 1000; // past 2^31: a double, not a small integer
  const log = new LineLog("#lobby", { keep: 50, maxBytes: 1 << 20 });
  for (let i = 0; i < 5_000; i++) log.appendText(who(i), kinds[i % 3], time(i), `l${i}`, i);
  assert.deepEqual(
    log.entries(50),
    Array.from({ length: 50 }, (_, k) => {
      const i = 4_950 + k;
      return {
        id: i,
        line: { room: "#lobby", time: time(i), from: who(i), kind: kinds[i % 3], text: `l${i}` },
      };
    }),
  );
  // A kind this program does not know, from a file another version wrote, reads as a message.
  log.appendText("dana", "shout" as "message", 1, "¡hola!");
  assert.equal(log.last(1)[0].kind, "message");
  assert.equal(log.last(1)[0].from, "dana");
});

Deno.test("LineLog gives each line its id: a batch's lines follow its first id", () => {
  const log = new LineLog("#lobby", { keep: 5, maxBytes: 1 << 20 });
  assert.ok(Number.isNaN(log.oldestId));
  log.appendText("ana", "message", 0, "uno", 7);
  log.append("bea", batch(["dos", "tres", "cuatro"]), 20);
  assert.deepEqual(log.entries(10).map((e) => [e.id, e.line.text]), [
    [7, "uno"],
    [20, "dos"],
    [21, "tres"],
    [22, "cuatro"],
  ]);
  // Past `keep`, and past many compactions, the ids stay with their lines.
  for (let n = 0; n < 500; n++) log.append("ana", batch([`a${n}`, `b${n}`]), 100 + 2 * n);
  assert.deepEqual(log.entries(3).map((e) => [e.id, e.line.text]), [
    [1097, "b498"],
    [1098, "a499"],
    [1099, "b499"],
  ]);
  assert.equal(log.oldestId, 1095);
});

Deno.test("LineLog shrunk to nothing takes new lines with their names", () => {
  const log = new LineLog("#lobby", { keep: 100, maxBytes: 1 << 20 });
  for (let i = 0; i < 300; i++) log.append(`u${i}`, batch([`a${i}`, `b${i}`], "message", i), 2 * i);
  assert.equal(log.shrinkTo(0), 100);
  assert.equal(log.size, 0);
  assert.deepEqual(log.last(10), []);
  log.append("ana", batch(["otra vez"], "action", 7), 900);
  assert.deepEqual(log.entries(10), [
    { id: 900, line: { room: "#lobby", time: 7, from: "ana", kind: "action", text: "otra vez" } },
  ]);
  assert.equal(log.oldestId, 900);
});

Deno.test("MemoryStore stays within its total bytes: the room quiet longest gives way", () => {
  // Lines of 10,000 bytes: about 15 fit, with what each room costs besides.
  const store = new MemoryStore({ keep: 1000, maxRoomBytes: 100_000, maxBytes: 155_000 });
  for (let i = 0; i < 10; i++) store.appendBatch("#old", "ana", batch(["o".repeat(10_000)]));
  for (let i = 0; i < 10; i++) store.appendBatch("#new", "bea", batch(["n".repeat(10_000)]));
  assert.equal(store.recent("#new", 100).length, 10);
  const old = store.recent("#old", 100).length;
  assert.ok(old > 0 && old <= 5, `#old kept ${old} lines`);
  // A busy #old again: now #new is the quiet one, and gives way.
  for (let i = 0; i < 3; i++) store.appendBatch("#old", "ana", batch(["o".repeat(10_000)]));
  assert.equal(store.recent("#old", 100).length, old + 3);
  const kept = store.recent("#new", 100).length;
  assert.ok(kept < 10 && old + 3 + kept <= 15, `#new kept ${kept} lines`);
  // The newest lines are those kept.
  assert.equal(store.recent("#new", 1)[0].text, "n".repeat(10_000));
});

Deno.test("MemoryStore spares the history of a room someone is in while others can give way", () => {
  // Lines of 10,000 bytes: about 15 fit, with what each room costs besides.
  const store = new MemoryStore({ keep: 1000, maxRoomBytes: 100_000, maxBytes: 155_000 });
  const line = (c: string) => batch([c.repeat(10_000)]);
  store.occupied("#Quiet", true);
  for (let i = 0; i < 3; i++) store.appendBatch("#quiet", "ana", line("q"));
  // A flood elsewhere: #quiet is the room appended to longest ago, yet keeps its lines.
  for (let i = 0; i < 10; i++) store.appendBatch("#a", "eve", line("a"));
  for (let i = 0; i < 10; i++) store.appendBatch("#b", "eve", line("b"));
  assert.equal(store.recent("#quiet", 100).length, 3);
  assert.equal(store.recent("#b", 100).length, 10);
  const a = store.recent("#a", 100).length;
  assert.ok(a < 10 && 3 + a + 10 <= 15, `#a kept ${a} lines`);
  // Once the room is empty, it is a room like any other: the quietest, it goes first.
  store.occupied("#quiet", false);
  for (let i = 0; i < 5; i++) store.appendBatch("#c", "eve", line("c"));
  assert.equal(store.recent("#quiet", 100).length, 0);
});

Deno.test("MemoryStore stays within maxBytes when the rooms people are in hold more than that", () => {
  const store = new MemoryStore({ keep: 1000, maxRoomBytes: 100_000, maxBytes: 155_000 });
  for (const room of ["#x", "#y"]) store.occupied(room, true);
  for (let i = 0; i < 10; i++) {
    store.appendBatch("#x", "ana", batch(["x".repeat(10_000)]));
    store.appendBatch("#y", "bea", batch(["y".repeat(10_000)]));
  }
  const x = store.recent("#x", 100).length;
  const y = store.recent("#y", 100).length;
  assert.ok(x + y <= 15 && x > 0 && y > 0, `kept ${x} and ${y} lines`);
});

Deno.test("MemoryStore counts what a room costs: a flood of one-line rooms stays within maxBytes", () => {
  // One byte of text a room: counted as text alone, 20,000 rooms would be
  // 20 KB and all kept, at about 1.7 KB of memory each (34 MB).
  const store = new MemoryStore({ maxBytes: 256 * 1024 });
  const rooms = 20_000;
  for (let i = 0; i < rooms; i++) store.appendBatch(`#r${i}`, `user${i}`, batch(["x"]));
  let kept = 0;
  for (let i = 0; i < rooms; i++) kept += store.recent(`#r${i}`, 1).length;
  const footprint = new LineLog("#r0", { keep: 10, maxBytes: 1000 });
  footprint.append("user0", batch(["x"]));
  assert.ok(kept <= Math.floor(256 * 1024 / footprint.footprint), `${kept} rooms kept`);
  assert.ok(kept > 50, `only ${kept} rooms kept`);
  // The newest rooms are those kept; the oldest were forgotten.
  assert.equal(store.recent(`#r${rooms - 1}`, 1).length, 1);
  assert.equal(store.recent("#r0", 1).length, 0);
});

Deno.test("MemoryStore keeps the MAX_TOPICS topics set last", () => {
  const store = new MemoryStore();
  for (let i = 0; i < MAX_TOPICS * 2; i++) {
    store.setTopic({ room: `#t${i}`, topic: `topic ${i}`, by: "ana", time: i });
  }
  // #t5 went long ago; set again, it is one of the newest.
  store.setTopic({ room: "#T5", topic: "again", by: "bea", time: MAX_TOPICS * 2 });
  const topics = store.topics();
  assert.ok(topics.length <= MAX_TOPICS * 17 / 16, `${topics.length} topics kept`);
  const rooms = new Set(topics.map((t) => t.room));
  // The oldest went (at most MAX_TOPICS and a sixteenth stay); the newest, and #T5 again, stayed.
  assert.ok(!rooms.has("#t0") && !rooms.has(`#t${MAX_TOPICS * 15 / 16 - 1}`));
  assert.ok(rooms.has(`#t${MAX_TOPICS * 2 - 1}`) && rooms.has("#T5"));
});
