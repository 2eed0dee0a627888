/**
 * History on joining a room and on `/history`: marked, in order, before the
 * live lines, also when the store answers later (a store that answers when
 * the test lets it, around the memory store: the asynchronous path a shared
 * store such as Redis takes). And which rooms keep it in a file past the
 * bound on rooms (those people are in).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { HistoryLine, RoomName } from "../lib/core/messages.ts";
import { MemoryStore } from "../lib/store/memory.ts";
import { SqliteStore } from "../lib/store/sqlite.ts";
import { type Ban, MAX_HISTORY_ROOMS, type Store, type StoredTopic } from "../lib/store/store.ts";
import { fileTexts, tempDir } from "./_files.ts";
import { startServer, TestClient, within } from "./_helpers.ts";

/**
 * The memory store, but `recent()` answers only when the test calls
 * `release()`, with the lines there were when it was asked.
 */
class LateStore implements Store {
  readonly description = "memory, answering late";
  readonly inner = new MemoryStore();
  /** Questions not yet answered. */
  #waiting: (() => void)[] = [];

  /** How many `recent()` calls wait for an answer. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Answers every question asked so far. */
  release(): void {
    for (const answer of this.#waiting.splice(0)) answer();
  }

  recent(room: RoomName, count: number): Promise<HistoryLine[]> {
    const lines = this.inner.recent(room, count);
    return new Promise((resolve) => this.#waiting.push(() => resolve(lines)));
  }

  append(line: HistoryLine): void {
    this.inner.append(line);
  }
  topics(): StoredTopic[] {
    return this.inner.topics();
  }
  setTopic(topic: StoredTopic): void {
    this.inner.setTopic(topic);
  }
  bans(): Ban[] {
    return this.inner.bans();
  }
  addBan(ban: Ban): void {
    this.inner.addBan(ban);
  }
  removeBan(mask: string): boolean {
    return this.inner.removeBan(mask);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    this.release();
    return this.inner.close();
  }
}

/** `[HH:MM] ` at the start of a history line. */
const STAMP = /^\[\d\d:\d\d\] /;

/** The lines of a history block, without their time stamps (which must be there). */
function unstamped(lines: string[]): string[] {
  return lines.map((line) => {
    assert.match(line, STAMP);
    return line.replace(STAMP, "");
  });
}

Deno.test("Joining a room shows its last lines, marked and stamped, before anything live", async () => {
  await using t = startServer({ relay: true, history: 3 });
  await using ana = await TestClient.connect(t.port);
  await ana.send("/nick ana", "uno", "dos", "/me saluda", "tres");
  await t.log.until(() => t.log.messages.length === 3, "ana's lines");
  await using bea = await TestClient.connect(t.port);
  const block = await bea.lines.until("* end of history");
  assert.equal(block[0], "* last 3 lines of #lobby:");
  assert.deepEqual(unstamped(block.slice(1, -1)), ["<ana> dos", "** ana saluda", "<ana> tres"]);
  await ana.send("cuatro");
  assert.equal(await bea.lines.next(), "<ana> cuatro");
  // /history again, with a count, shows the live line too, in its place.
  await bea.send("/history 2");
  assert.equal(await bea.lines.next(), "* last 2 lines of #lobby:");
  assert.deepEqual(unstamped([(await bea.lines.next())!, (await bea.lines.next())!]), [
    "<ana> tres",
    "<ana> cuatro",
  ]);
  assert.equal(await bea.lines.next(), "* end of history");
});

Deno.test("The history on joining holds every kind of room line, oldest first", async () => {
  await using t = startServer({ relay: true });
  await using ana = await TestClient.connect(t.port);
  await ana.send("/nick ana", "uno", "/me saluda", "dos");
  await t.log.until(() => t.log.messages.length === 2, "ana's lines");
  t.server.say("aviso", "#lobby");
  await using bea = await TestClient.connect(t.port);
  const block = await bea.lines.until("* end of history");
  assert.deepEqual(block[0], "* last 4 lines of #lobby:");
  assert.deepEqual(unstamped(block.slice(1, -1)), [
    "<ana> uno",
    "** ana saluda",
    "<ana> dos",
    "<server> aviso",
  ]);
});

Deno.test("--history 0 shows no history on joining, and /history still does", async () => {
  await using t = startServer({ relay: true, history: 0 });
  await using ana = await TestClient.connect(t.port);
  await ana.send("/nick ana", "uno");
  await t.log.until(() => t.log.messages.length === 1, "ana's line");
  await using bea = await TestClient.connect(t.port);
  await ana.send("dos");
  assert.equal(await bea.lines.next(), "<ana> dos", "no history first");
  await bea.send("/history");
  assert.equal(await bea.lines.next(), "* last 2 lines of #lobby:");
  await using carlos = await TestClient.connect(t.port);
  await carlos.send("/join #vacia", "/history");
  await carlos.lines.until("* no history in #vacia");
});

Deno.test("A history replay that answers late holds live lines that arrive meanwhile, and sends them after it, in order", async () => {
  const store = new LateStore();
  await using t = startServer({ relay: true, store });
  await using ana = await TestClient.connect(t.port);
  store.release(); // ana's own (empty) history
  await ana.send("/nick ana", "uno", "dos");
  await t.log.until(() => t.log.messages.length === 2, "ana's first lines");

  await using bea = await TestClient.connect(t.port);
  assert.equal(store.waiting, 1, "bea's history is being fetched");
  // Said while bea's history is on its way: room lines wait for it; a private
  // message does not, so it arriving first shows that the room lines waited.
  await ana.send("tres", "/me saluda", `/msg ${bea.name} psst`);
  assert.equal(await bea.lines.next(), "*ana* psst");
  store.release();
  assert.equal(await bea.lines.next(), "* last 2 lines of #lobby:");
  assert.deepEqual(unstamped([(await bea.lines.next())!, (await bea.lines.next())!]), [
    "<ana> uno",
    "<ana> dos",
  ]);
  assert.equal(await bea.lines.next(), "* end of history");
  assert.equal(await bea.lines.next(), "<ana> tres");
  assert.equal(await bea.lines.next(), "** ana saluda");
  // And afterwards live lines go straight through.
  await ana.send("cuatro");
  assert.equal(await bea.lines.next(), "<ana> cuatro");
  assert.equal(store.waiting, 0);
});

Deno.test("/history asked while the join's history is on its way answers after it, including what was held", async () => {
  const store = new LateStore();
  await using t = startServer({ relay: true, store });
  await using ana = await TestClient.connect(t.port);
  store.release();
  await ana.send("/nick ana", "uno");
  await t.log.until(() => t.log.messages.length === 1, "ana's first line");
  await using bea = await TestClient.connect(t.port);
  await bea.send("/history 5");
  await ana.send("dos", `/msg ${bea.name} psst`);
  assert.equal(await bea.lines.next(), "*ana* psst");
  assert.equal(store.waiting, 1, "the /history waits for the join's replay, not beside it");
  store.release();
  const first = await bea.lines.until("* end of history");
  assert.deepEqual(unstamped(first.slice(1, -1)), ["<ana> uno"]);
  assert.equal(await bea.lines.next(), "<ana> dos");
  // The /history is asked now, and answers with both lines.
  store.release();
  const second = await bea.lines.until("* end of history");
  assert.equal(second[0], "* last 2 lines of #lobby:");
  assert.deepEqual(unstamped(second.slice(1, -1)), ["<ana> uno", "<ana> dos"]);
});

Deno.test("A JSON client gets the history as one typed event before the live lines", async () => {
  await using t = startServer({ relay: true });
  await using ana = await TestClient.connect(t.port);
  await ana.send("/nick ana", "uno");
  await t.log.until(() => t.log.messages.length === 1, "ana's line");
  await using bea = await TestClient.connect(t.port);
  await bea.lines.until("* end of history");
  await bea.send("/json");
  const events = [];
  for (let line; (line = await bea.lines.next()) !== null;) {
    const event = JSON.parse(line);
    events.push(event.type);
    if (event.type === "history") {
      assert.equal(event.room, "#lobby");
      assert.deepEqual(event.lines.map((l: HistoryLine) => [l.from, l.kind, l.text]), [
        ["ana", "message", "uno"],
      ]);
      break;
    }
  }
  assert.deepEqual(events, ["welcome", "joined", "history"]);
});

Deno.test("a server with --db keeps the history of a room people are in, past MAX_HISTORY_ROOMS", async () => {
  using dir = tempDir("charla_store_");
  const path = `${dir.path}/charla.db`;
  let pruned = 0;
  let prunedMore = Promise.withResolvers<void>();
  await using store = await SqliteStore.open(path, {
    pruneMs: 0,
    onEvent: (event) => {
      if (event.type !== "pruned") return;
      pruned += event.lines;
      prunedMore.resolve();
    },
  });
  await using t = startServer({ relay: true, store });
  await using ana = await TestClient.connect(t.port);
  await ana.send("/nick ana", "/join #quiet", "hola", "/history 1");
  await ana.lines.until(/<ana> hola$/); // from the history: stored
  // One line in each of enough other rooms to pass the bound, through the
  // server's store; waits until the rooms past it lost their history.
  let next = 0;
  let rooms = 1; // with history in the file: #quiet
  const fill = async (count: number) => {
    const expected = pruned + rooms + count - MAX_HISTORY_ROOMS; // one line each
    rooms = MAX_HISTORY_ROOMS;
    for (let i = 0; i < count; i++) {
      const text = `x${next}`;
      store.append({ room: `#r${next++}`, time: 0, from: "bea", kind: "message", text });
    }
    await store.flush();
    while (pruned < expected) {
      await within(prunedMore.promise, `${expected} lines pruned (${pruned} so far)`);
      prunedMore = Promise.withResolvers<void>();
    }
  };
  await fill(MAX_HISTORY_ROOMS + MAX_HISTORY_ROOMS / 16 + 1);
  assert.deepEqual(fileTexts(path, "#quiet"), ["hola"], "ana is in #quiet: it keeps its history");
  // Empty, #quiet is like any other room: enough new ones take its history.
  await ana.send("/part");
  await ana.lines.until(/^\* you are now in #lobby/);
  await fill(MAX_HISTORY_ROOMS + MAX_HISTORY_ROOMS / 16 + 1);
  assert.deepEqual(fileTexts(path, "#quiet"), []);
});

Deno.test("a server without --db spares the history of a room people are in when memory runs short", async () => {
  const store = new MemoryStore({ maxBytes: 256 * 1024 });
  await using t = startServer({ relay: true, store });
  await using ana = await TestClient.connect(t.port);
  await ana.send("/nick ana", "/join #quiet", "hola", "/history 1");
  await ana.lines.until(/<ana> hola$/); // from the history: stored
  // Lines of 1,000 bytes in other rooms, through the server's store: twice the bound.
  let next = 0;
  const fill = () => {
    for (let i = 0; i < 512; i++) {
      const text = "x".repeat(1_000);
      store.append({ room: `#r${next++ % 8}`, time: 0, from: "bea", kind: "message", text });
    }
  };
  fill();
  assert.deepEqual(store.recent("#quiet", 5).map((l) => l.text), ["hola"], "ana is in #quiet");
  assert.ok(store.recent("#r0", 100).length < 64, "the other rooms gave way");
  // Empty, #quiet is like any other room, and the quietest: it goes first.
  await ana.send("/part");
  await ana.lines.until(/^\* you are now in #lobby/);
  fill();
  assert.deepEqual(store.recent("#quiet", 5), []);
});
