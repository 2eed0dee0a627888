import assert from "node:assert/strict";
import { SaidBatch } from "../core/peer.ts";
import { LineLog } from "./line_log.ts";
import { MemoryStore } from "./memory.ts";

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
  const store = new MemoryStore({ keep: 1000, maxRoomBytes: 10_000, maxBytes: 15_000 });
  for (let i = 0; i < 10; i++) store.appendBatch("#old", "ana", batch(["o".repeat(1000)]));
  for (let i = 0; i < 10; i++) store.appendBatch("#new", "bea", batch(["n".repeat(1000)]));
  assert.equal(store.recent("#new", 100).length, 10);
  assert.equal(store.recent("#old", 100).length, 5);
  // A busy #old again: now #new is the quiet one.
  for (let i = 0; i < 3; i++) store.appendBatch("#old", "ana", batch(["o".repeat(1000)]));
  assert.equal(store.recent("#old", 100).length, 8);
  assert.equal(store.recent("#new", 100).length, 7);
});
