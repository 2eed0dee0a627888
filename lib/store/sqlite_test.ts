import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { HistoryLine } from "../core/messages.ts";
import { SaidBatch } from "../core/peer.ts";
import type { LineBatch } from "./line_log.ts";
import { SqliteStore, type SqliteStoreOptions } from "./sqlite.ts";
import { MAX_HISTORY_ROOMS, MAX_TOPICS, StoreError, type StoreEvent } from "./store.ts";

/** A temporary directory, removed on dispose. */
function tempDir(): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix: "charla_store_" });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

/** Events a store reported, with a way to wait for them. */
class Events {
  readonly all: StoreEvent[] = [];
  #waiters: { test: () => boolean; resolve: () => void }[] = [];

  readonly push = (event: StoreEvent): void => {
    this.all.push(event);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.test()) return true;
      w.resolve();
      return false;
    });
  };

  of<T extends StoreEvent["type"]>(type: T): Extract<StoreEvent, { type: T }>[] {
    return this.all.filter((e) => e.type === type) as Extract<StoreEvent, { type: T }>[];
  }

  /** Waits until `test()` holds (checked after each event), within a deadline. */
  async until(test: () => boolean, what: string, ms = 10_000): Promise<void> {
    if (test()) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ test, resolve });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)),
        ms,
      );
    });
    try {
      await Promise.race([promise, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The first event of `type`, waiting for it if none came yet. */
  async first<T extends StoreEvent["type"]>(type: T): Promise<Extract<StoreEvent, { type: T }>> {
    await this.until(() => this.of(type).length > 0, `a "${type}" event`);
    return this.of(type)[0];
  }
}

function line(room: string, text: string, time = 0): HistoryLine {
  return { room, time, from: "ana", kind: "message", text };
}

/** Opens a store in `dir` with its events recorded. */
async function open(
  path: string,
  options: SqliteStoreOptions = {},
): Promise<{ store: SqliteStore; events: Events } & AsyncDisposable> {
  const events = new Events();
  const store = await SqliteStore.open(path, { onEvent: events.push, ...options });
  return { store, events, [Symbol.asyncDispose]: () => store.close() };
}

/** The texts of the file's lines, in row order, read without the store. */
function fileTexts(path: string, room?: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const rows = room === undefined
      ? db.prepare("SELECT text FROM runs ORDER BY id").all()
      : db.prepare("SELECT text FROM runs WHERE room = ? ORDER BY id").all(room);
    return rows.flatMap((row) => new TextDecoder().decode(row.text as Uint8Array).split("\n"));
  } finally {
    db.close();
  }
}

Deno.test("SqliteStore keeps every room's history across close and reopen, in order", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  {
    await using s = await open(path);
    for (let i = 0; i < 300; i++) s.store.append(line(["#uno", "#dos", "#tres"][i % 3], `l${i}`));
  }
  await using s = await open(path);
  const dos = s.store.recent("#DOS", 1_000).map((l) => l.text);
  assert.deepEqual(dos, Array.from({ length: 100 }, (_, i) => `l${3 * i + 1}`));
  assert.deepEqual(s.store.recent("#tres", 2), [line("#tres", "l296"), line("#tres", "l299")]);
  assert.equal(fileTexts(path).length, 300);
  // A line appended now goes after the old ones, in the ring and in the file.
  s.store.append(line("#dos", "new"));
  assert.deepEqual(s.store.recent("#dos", 2).map((l) => l.text), ["l298", "new"]);
  await s.store.flush();
  assert.deepEqual(fileTexts(path, "#dos").slice(-2), ["l298", "new"]);
});

Deno.test("SqliteStore.recent() includes lines appended but not yet committed", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  // A window far longer than the test: nothing is committed unless asked.
  await using s = await open(path, { commitMs: 600_000 });
  for (let i = 0; i < 5; i++) s.store.append(line("#lobby", `l${i}`));
  assert.deepEqual(fileTexts(path), []);
  assert.deepEqual(s.store.recent("#lobby", 3).map((l) => l.text), ["l2", "l3", "l4"]);
  await s.store.flush();
  assert.deepEqual(fileTexts(path), ["l0", "l1", "l2", "l3", "l4"]);
});

Deno.test("SqliteStore commits 10,000 appends of one tick in a handful of transactions", async () => {
  using dir = tempDir();
  await using s = await open(`${dir.path}/charla.db`);
  for (let i = 0; i < 10_000; i++) s.store.append(line(`#r${i % 7}`, `l${i}`));
  await s.store.flush();
  const stored = s.events.of("stored");
  assert.equal(stored.reduce((sum, e) => sum + e.lines, 0), 10_000);
  assert.ok(stored.length <= 5, `${stored.length} commits for 10,000 lines`);
  assert.equal(fileTexts(`${dir.path}/charla.db`).length, 10_000);
});

Deno.test("SqliteStore commits a line once its group-commit window has passed", async () => {
  using dir = tempDir();
  await using s = await open(`${dir.path}/charla.db`, { commitMs: 100 });
  s.store.append(line("#lobby", "hola"));
  const stored = await s.events.first("stored");
  assert.equal(stored.lines, 1);
  // ms: from the append to the commit, window included.
  assert.ok(stored.ms >= 99, `committed after ${stored.ms} ms`);
  assert.deepEqual(fileTexts(`${dir.path}/charla.db`), ["hola"]);
});

Deno.test("SqliteStore commits a batch of batchLines lines without waiting for the window", async () => {
  using dir = tempDir();
  await using s = await open(`${dir.path}/charla.db`, { commitMs: 600_000, batchLines: 100 });
  for (let i = 0; i < 250; i++) s.store.append(line("#lobby", `l${i}`));
  // Two full batches go without flush(); the last 50 wait for the window.
  await s.events.until(() => s.events.of("stored").length >= 2, "two commits");
  assert.deepEqual(s.events.of("stored").map((e) => e.lines).slice(0, 2), [100, 100]);
});

Deno.test("SqliteStore.close() during a backlog waits for the batch at the writer, then writes the rest", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  const events = new Events();
  let closing: Promise<void> | undefined;
  const store = await SqliteStore.open(path, {
    batchLines: 100,
    onEvent: (event) => {
      events.push(event);
      // Right after the first commit is handled, while the next batch (sent as
      // it was handled) is at the writer. Before the fix, close() took that
      // batch for landed and spun forever, never letting its answer in.
      if (event.type === "stored" && closing === undefined) {
        queueMicrotask(() => closing = store.close());
      }
    },
  });
  for (let i = 0; i < 1000; i++) store.append(line("#lobby", `l${i}`));
  await events.first("stored");
  await events.until(() => closing !== undefined, "close() to be called");
  await closing;
  assert.deepEqual(fileTexts(path), Array.from({ length: 1000 }, (_, i) => `l${i}`));
  assert.deepEqual(events.of("failed"), []);
});

Deno.test("SqliteStore prunes each room to keep lines in the background", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  {
    await using s = await open(path, { keep: 100 });
    for (let i = 0; i < 250; i++) s.store.append(line("#big", `b${i}`));
    for (let i = 0; i < 50; i++) s.store.append(line("#small", `s${i}`));
    await s.store.flush();
    const pruned = await s.events.first("pruned");
    assert.equal(pruned.lines, 150);
    assert.equal(fileTexts(path, "#big").length, 100);
    assert.equal(fileTexts(path, "#small").length, 50);
    assert.deepEqual(s.store.recent("#big", 1_000).length, 100);
  }
  await using s = await open(path, { keep: 100 });
  const big = s.store.recent("#big", 1_000).map((l) => l.text);
  assert.deepEqual(big, Array.from({ length: 100 }, (_, i) => `b${150 + i}`));
});

Deno.test("SqliteStore.recent() reads lines older than its ring from the file", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  await using s = await open(path, { cacheLines: 10 });
  for (let i = 0; i < 100; i++) s.store.append(line(i % 2 ? "#odd" : "#even", `l${i}`));
  await s.store.flush();
  const odd = s.store.recent("#odd", 30).map((l) => l.text);
  assert.deepEqual(odd, Array.from({ length: 30 }, (_, i) => `l${41 + 2 * i}`));
});

Deno.test("SqliteStore.recent() finds uncommitted lines older than its ring", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  await using s = await open(path, { cacheLines: 10, commitMs: 600_000 });
  for (let i = 0; i < 40; i++) s.store.append(line("#lobby", `old${i}`));
  await s.store.flush();
  // A burst larger than the ring, not committed yet: the ring holds its last 10.
  for (let i = 0; i < 40; i++) s.store.append(line("#lobby", `new${i}`));
  const texts = s.store.recent("#lobby", 50).map((l) => l.text);
  assert.deepEqual(texts, [
    ...Array.from({ length: 10 }, (_, i) => `old${30 + i}`),
    ...Array.from({ length: 40 }, (_, i) => `new${i}`),
  ]);
});

Deno.test("SqliteStore replays old lines under those appended before the first recent()", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  {
    await using s = await open(path);
    for (let i = 0; i < 3; i++) s.store.append(line("#lobby", `before${i}`));
  }
  await using s = await open(path);
  s.store.append(line("#Lobby", "after"));
  assert.deepEqual(s.store.recent("#lobby", 10).map((l) => l.text), [
    "before0",
    "before1",
    "before2",
    "after",
  ]);
});

Deno.test("SqliteStore creates a versioned schema in a new file", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  {
    await using _ = await open(path);
  }
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const pragma = (name: string) => Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0];
    assert.equal(pragma("user_version"), 3);
    assert.equal(pragma("application_id"), 0x63686172);
    assert.equal(pragma("journal_mode"), "wal");
    assert.equal(pragma("page_size"), 8192);
  } finally {
    db.close();
  }
});

Deno.test("SqliteStore.open() refuses a database with a newer schema", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  {
    await using _ = await open(path);
  }
  const db = new DatabaseSync(path);
  db.exec("PRAGMA user_version = 4");
  db.close();
  await assert.rejects(
    SqliteStore.open(path),
    new StoreError(
      `Cannot open the database "${path}": its schema is version 4 and this charla knows ` +
        `versions up to 3; run a newer charla or pass another --db`,
    ),
  );
});

Deno.test("SqliteStore.open() refuses a file of random bytes", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  Deno.writeFileSync(path, crypto.getRandomValues(new Uint8Array(16_384)));
  await assert.rejects(
    SqliteStore.open(path),
    new StoreError(
      `Cannot open the database "${path}": file is not a database; move it aside or pass another --db`,
    ),
  );
});

Deno.test("SqliteStore.open() refuses a text file and leaves it as it was", async () => {
  using dir = tempDir();
  const path = `${dir.path}/notes.txt`;
  const text = "these are my notes, not a database\n".repeat(200);
  Deno.writeTextFileSync(path, text);
  await assert.rejects(
    SqliteStore.open(path),
    new StoreError(
      `Cannot open the database "${path}": file is not a database; move it aside or pass another --db`,
    ),
  );
  assert.equal(Deno.readTextFileSync(path), text);
});

Deno.test("SqliteStore.open() refuses another program's SQLite database", async () => {
  using dir = tempDir();
  const path = `${dir.path}/other.db`;
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)");
  db.close();
  await assert.rejects(SqliteStore.open(path), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.match(e.message, /it is not a charla database .*; pass another --db$/);
    return true;
  });
});

Deno.test("SqliteStore.open() refuses a file another store has open", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  await using _ = await open(path);
  await assert.rejects(
    SqliteStore.open(path),
    new StoreError(
      `Cannot open the database "${path}": another charla is using it; ` +
        `stop that one or pass another --db`,
    ),
  );
});

Deno.test("SqliteStore.open() refuses a database another program has locked", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  {
    await using _ = await open(path);
  }
  const other = new DatabaseSync(path);
  try {
    other.exec("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE");
    await assert.rejects(SqliteStore.open(path), (e: unknown) => {
      assert.ok(e instanceof StoreError);
      assert.equal(
        e.message,
        `Cannot open the database "${path}": another program holds a lock on it; ` +
          `close that program or pass another --db`,
      );
      return true;
    });
  } finally {
    other.close();
  }
  // Once the other program lets go, it opens.
  await using _ = await open(path);
});

Deno.test("SqliteStore reports a full database once and keeps the chat going", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  const appended: string[] = [];
  const text = "x".repeat(200);
  // A quota of 128 KiB: SQLite's max_page_count, whose error is SQLITE_FULL,
  // the same as a disk with no space left.
  const s = await open(path, { maxBytes: 128 * 1024, commitMs: 1 });
  for (let tick = 0; tick < 20; tick++) {
    for (let i = 0; i < 50; i++) {
      const t = `${appended.length} ${text}`;
      appended.push(t);
      s.store.append(line("#lobby", t)); // never throws
    }
    await s.store.flush();
  }
  const failed = s.events.of("failed");
  assert.equal(failed.length, 1);
  assert.match(
    failed[0].message,
    new RegExp(
      `^Cannot write to the database "${path}": database or disk is full; ` +
        `free some disk space\\. The chat goes on`,
    ),
  );
  // History still answers, from memory.
  assert.equal(s.store.recent("#lobby", 1)[0].text, appended.at(-1));
  assert.equal(s.events.of("recovered").length, 0);
  await s.store.close();
  // close() tried once more, then said what it could not write.
  const written = fileTexts(path);
  assert.ok(written.length > 0 && written.length < appended.length, `${written.length} written`);
  assert.deepEqual(written, appended.slice(0, written.length));
  assert.equal(
    s.events.of("failed").at(-1)!.message,
    `Closed the database "${path}" with ${appended.length - written.length} lines not written: ` +
      "database or disk is full",
  );
});

Deno.test("SqliteStore keeps at most about maxPending unwritten lines, dropping the oldest", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  const s = await open(path, { maxBytes: 16 * 1024, maxPending: 1_000 });
  const text = "y".repeat(100);
  for (let i = 0; i < 5_000; i++) s.store.append(line("#lobby", `${i} ${text}`));
  await s.store.flush();
  await s.events.first("failed");
  let most = 0;
  for (let i = 5_000; i < 10_000; i++) {
    s.store.append(line("#lobby", `${i} ${text}`));
    most = Math.max(most, s.store.pending);
  }
  assert.ok(most >= 1_000 && most <= 1_100, `${most} lines kept`);
  // The newest lines are the ones kept.
  assert.equal(s.store.recent("#lobby", 1)[0].text, `9999 ${text}`);
  await s.store.close();
  assert.deepEqual(fileTexts(path), []);
  assert.match(s.events.of("failed").at(-1)!.message, /with 10000 lines not written/);
});

Deno.test("SqliteStore that falls behind drops the oldest waiting lines and says so", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  await using s = await open(path, { maxPending: 2_000, batchLines: 1_000 });
  // In one turn of the event loop: the first 1,000 go to the writer as one
  // batch, which cannot answer before the loop ends; the next 19,000 wait.
  for (let i = 0; i < 20_000; i++) s.store.append(line("#lobby", `${i}`));
  assert.equal(s.events.of("failed").length, 1);
  assert.match(s.events.of("failed")[0].message, /as fast as lines come: more than 2000 wait/);
  await s.store.flush();
  const recovered = s.events.of("recovered");
  assert.equal(recovered.length, 1);
  const dropped = recovered[0].dropped!;
  assert.ok(dropped >= 16_800 && dropped <= 17_000, `${dropped} dropped`);
  // The batch at the writer, then the newest lines: the oldest waiting ones went.
  assert.deepEqual(fileTexts(path), [
    ...Array.from({ length: 1_000 }, (_, i) => `${i}`),
    ...Array.from({ length: 19_000 - dropped }, (_, i) => `${1_000 + dropped + i}`),
  ]);
});

Deno.test("SqliteStore keeps bans with their expiry across reopen", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  const now = Date.now();
  {
    await using s = await open(path);
    s.store.addBan({ mask: "ana", kind: "name", reason: "spam", since: now, until: null });
    s.store.addBan({
      mask: "10.0.0.0/8",
      kind: "address",
      reason: "",
      since: now,
      until: now + 3_600_000,
    });
    s.store.addBan({
      mask: "192.0.2.7",
      kind: "address",
      reason: "old",
      since: now - 2,
      until: now - 1,
    });
    s.store.addBan({ mask: "bea", kind: "name", reason: "", since: now, until: null });
    // The same mask, ignoring case, replaces.
    s.store.addBan({ mask: "ANA", kind: "name", reason: "flood", since: now, until: null });
    assert.equal(s.store.removeBan("Bea"), true);
    assert.equal(s.store.removeBan("bea"), false);
    assert.deepEqual(s.store.bans().map((b) => b.mask).sort(), ["10.0.0.0/8", "ANA"]);
  }
  {
    await using s = await open(path);
    assert.deepEqual(s.store.bans().sort((a, b) => a.mask.localeCompare(b.mask)), [
      { mask: "10.0.0.0/8", kind: "address", reason: "", since: now, until: now + 3_600_000 },
      { mask: "ANA", kind: "name", reason: "flood", since: now, until: null },
    ]);
    assert.equal(s.store.removeBan("ana"), true);
  }
  // In the file: the ban in force; the expired one was cleaned up by the writer.
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    assert.deepEqual(db.prepare("SELECT mask FROM bans").all().map((r) => r.mask), ["10.0.0.0/8"]);
  } finally {
    db.close();
  }
});

Deno.test("SqliteStore keeps at most cacheBytes of recent lines in memory; a dropped room replays from the file", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  const cacheBytes = 64 * 1024;
  // A long window: the first rooms' lines are not written yet when they leave memory.
  await using s = await open(path, { cacheBytes, commitMs: 600_000, batchLines: 100_000 });
  for (let i = 0; i < 3; i++) s.store.append(line("#first", `f${i}`));
  // Counted as text, 5,000 rooms of one short line would be 30 KB; as memory, 8 MB.
  for (let i = 0; i < 5_000; i++) s.store.append(line(`#r${i}`, `x${i}`));
  assert.ok(s.store.cachedBytes <= cacheBytes, `${s.store.cachedBytes} bytes cached`);
  assert.ok(s.store.pending > 5_000, "the lines are not written yet");
  // #first left memory long ago: its lines come from those waiting to be written.
  assert.deepEqual(s.store.recent("#first", 10).map((l) => l.text), ["f0", "f1", "f2"]);
  await s.store.flush();
  assert.deepEqual(s.store.recent("#r0", 10).map((l) => l.text), ["x0"]);
  s.store.append(line("#r1", "again"));
  assert.deepEqual(s.store.recent("#r1", 10).map((l) => l.text), ["x1", "again"]);
  assert.ok(s.store.cachedBytes <= cacheBytes, `${s.store.cachedBytes} bytes cached`);
});

Deno.test("SqliteStore keeps the MAX_TOPICS topics set last, in memory and in the file", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  const more = MAX_TOPICS / 5;
  {
    await using s = await open(path);
    for (let i = 0; i < MAX_TOPICS + more; i++) {
      s.store.setTopic({ room: `#t${i}`, topic: `topic ${i}`, by: "ana", time: i });
    }
    assert.ok(s.store.topics().length <= MAX_TOPICS * 17 / 16, "topics kept in memory");
  }
  const db = new DatabaseSync(path, { readOnly: true });
  const rows = (db.prepare("SELECT count(*) AS n FROM topics").get() as { n: number }).n;
  db.close();
  assert.ok(rows <= MAX_TOPICS * 1.1, `${rows} rows of topics`);
  await using s = await open(path);
  const topics = s.store.topics();
  assert.equal(topics.length, MAX_TOPICS);
  assert.equal(Math.min(...topics.map((t) => t.time)), more);
});

Deno.test("SqliteStore prunes a room written to again after 10,000 others", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  await using s = await open(path, { keep: 5, pruneMs: 0 });
  for (let i = 0; i < 4; i++) s.store.append(line("#first", `a${i}`));
  await s.store.flush();
  for (let i = 0; i < 10_001; i++) s.store.append(line(`#r${i}`, `x${i}`));
  await s.store.flush();
  // The writer stopped counting #first's lines; it counts them again now.
  for (let i = 0; i < 4; i++) s.store.append(line("#first", `b${i}`));
  await s.store.flush();
  await s.events.until(() => fileTexts(path, "#first").length === 5, "#first pruned to 5 lines");
  assert.deepEqual(fileTexts(path, "#first"), ["a3", "b0", "b1", "b2", "b3"]);
});

/** Rows of the rooms table, and distinct rooms of the runs table, read without the store. */
function fileRooms(path: string): { rooms: number; withRuns: number } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    return {
      rooms: n("SELECT count(*) AS n FROM rooms"),
      withRuns: n("SELECT count(DISTINCT room) AS n FROM runs"),
    };
  } finally {
    db.close();
  }
}

/**
 * Says one line in each of MAX_HISTORY_ROOMS / 8 more new rooms than the
 * bound, `#r0` on (calling `after(i)` after each), beside one room written to
 * earlier that stays. Past a sixteenth more, the rooms written to longest ago
 * lose their history, down to the bound: waits until the lines of those
 * (`#r0` to `#r<gone - 1>`) were pruned, checks that no more were and that
 * the next room kept its line, and returns `gone`.
 */
async function passTheBound(
  s: { store: SqliteStore; events: Events },
  path: string,
  after?: (i: number) => void,
): Promise<number> {
  const total = MAX_HISTORY_ROOMS + MAX_HISTORY_ROOMS / 8;
  const gone = total + 1 - MAX_HISTORY_ROOMS;
  for (let i = 0; i < total; i++) {
    s.store.append(line(`#r${i}`, `x${i}`));
    after?.(i);
    if (i % 1_000 === 999) await s.store.flush();
  }
  await s.store.flush();
  const pruned = () => s.events.of("pruned").reduce((t, e) => t + e.lines, 0);
  await s.events.until(() => pruned() >= gone, `${gone} lines of old rooms pruned`);
  assert.equal(pruned(), gone);
  assert.deepEqual(fileTexts(path, `#r${gone - 1}`), []);
  assert.deepEqual(fileTexts(path, `#r${gone}`), [`x${gone}`]);
  return gone;
}

Deno.test("SqliteStore keeps the history of the MAX_HISTORY_ROOMS rooms written to last", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  {
    await using s = await open(path, { pruneMs: 0 });
    s.store.append(line("#Kept", "first"));
    // The first room made, written to again (spelled otherwise) before the
    // bound was passed, stays.
    await passTheBound(s, path, (i) => {
      if (i === MAX_HISTORY_ROOMS) s.store.append(line("#kept", "again"));
    });
  }
  assert.deepEqual(fileRooms(path), { rooms: MAX_HISTORY_ROOMS, withRuns: MAX_HISTORY_ROOMS });
  assert.deepEqual(fileTexts(path, "#r0"), []);
  assert.deepEqual(fileTexts(path, "#kept"), ["first", "again"]);
  // Reopened, it counts the rooms again: one more room costs no other its history.
  {
    await using s = await open(path);
    s.store.append(line("#new", "hola"));
    await s.store.flush();
  }
  assert.deepEqual(fileRooms(path), {
    rooms: MAX_HISTORY_ROOMS + 1,
    withRuns: MAX_HISTORY_ROOMS + 1,
  });
});

Deno.test("SqliteStore keeps the history of a room someone is in past MAX_HISTORY_ROOMS", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  await using s = await open(path, { pruneMs: 0 });
  // The oldest room, but someone is in it.
  s.store.append(line("#Quiet", "hola"));
  s.store.occupied("#Quiet", true);
  await passTheBound(s, path);
  assert.deepEqual(fileTexts(path, "#quiet"), ["hola"]);
});

Deno.test("SqliteStore keeps topics by room, ignoring case, across reopen", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  {
    await using s = await open(path);
    s.store.setTopic({ room: "#Lobby", topic: "hola", by: "ana", time: 1 });
    s.store.setTopic({ room: "#lobby", topic: "adiós", by: "bea", time: 2 });
    s.store.setTopic({ room: "#dev", topic: "", by: "server", time: 3 });
    assert.equal(s.store.topics().length, 2);
  }
  await using s = await open(path);
  assert.deepEqual(s.store.topics().sort((a, b) => a.time - b.time), [
    { room: "#lobby", topic: "adiós", by: "bea", time: 2 },
    { room: "#dev", topic: "", by: "server", time: 3 },
  ]);
});

Deno.test("SqliteStore.close() is safe to call twice and ignores appends after it", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  const s = await open(path);
  s.store.append(line("#lobby", "one"));
  const first = s.store.close();
  s.store.append(line("#lobby", "late"));
  await Promise.all([first, s.store.close()]);
  await s.store.flush();
  assert.deepEqual(fileTexts(path), ["one"]);
});

Deno.test("SqliteStore.open() rejects options out of range", async () => {
  using dir = tempDir();
  await assert.rejects(
    SqliteStore.open(`${dir.path}/charla.db`, { commitMs: -1 }),
    new RangeError(`SqliteStore option "commitMs" must be an integer >= 0`),
  );
});

/** `texts` as one relayed batch said by `from`, as the core hands it to the store. */
function said(texts: string[], time = 0): LineBatch {
  const batch = new SaidBatch();
  for (const text of texts) {
    batch.text.appendText(text);
    batch.endLine();
  }
  batch.time = time;
  return batch;
}

Deno.test("SqliteStore keeps a relayed batch as one row, its lines in order after a reopen", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  const texts = Array.from({ length: 1_000 }, (_, i) => `línea ${i}`);
  {
    await using s = await open(path);
    s.store.appendBatch("#lobby", "ana", said(texts, 42));
    s.store.appendBatch("#lobby", "bea", said(["hola"], 43));
    assert.deepEqual(s.store.recent("#lobby", 2).map((l) => [l.from, l.text]), [
      ["ana", "línea 999"],
      ["bea", "hola"],
    ]);
  }
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const rows = db.prepare("SELECT id, name, count FROM runs ORDER BY id").all();
    assert.deepEqual(rows.map((r) => [r.id, r.name, r.count]), [[1, "ana", 1_000], [
      1_001,
      "bea",
      1,
    ]]);
  } finally {
    db.close();
  }
  await using s = await open(path);
  const recent = s.store.recent("#lobby", 1_001);
  assert.deepEqual(recent.map((l) => l.text), [...texts, "hola"]);
  assert.deepEqual(recent[0], {
    room: "#lobby",
    time: 42,
    from: "ana",
    kind: "message",
    text: "línea 0",
  });
  // Ids go on after the last row's lines.
  s.store.append(line("#lobby", "after"));
  await s.store.flush();
  assert.deepEqual(fileTexts(path).slice(-2), ["hola", "after"]);
});

Deno.test("SqliteStore prunes inside a row: exactly keep lines stay", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  await using s = await open(path, { keep: 10, pruneMs: 0 });
  s.store.appendBatch("#lobby", "ana", said(Array.from({ length: 25 }, (_, i) => `l${i}`)));
  await s.store.flush();
  await s.events.until(() => s.events.of("pruned").length > 0, "a prune");
  assert.equal(s.events.of("pruned")[0].lines, 15);
  assert.deepEqual(fileTexts(path), Array.from({ length: 10 }, (_, i) => `l${15 + i}`));
});

Deno.test("SqliteStore migrates a version 1 file (a row per line) and keeps its history", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  const v1 = new DatabaseSync(path);
  v1.exec(`
    PRAGMA journal_mode = WAL;
    CREATE TABLE lines (id INTEGER PRIMARY KEY, room TEXT NOT NULL COLLATE NOCASE,
      time INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL);
    CREATE INDEX lines_by_room ON lines (room, id);
    CREATE TABLE topics (room TEXT PRIMARY KEY COLLATE NOCASE, topic TEXT NOT NULL,
      by TEXT NOT NULL, time INTEGER NOT NULL);
    CREATE TABLE bans (mask TEXT PRIMARY KEY COLLATE NOCASE, kind TEXT NOT NULL,
      reason TEXT NOT NULL, since INTEGER NOT NULL, until INTEGER);
    INSERT INTO lines VALUES (1, '#lobby', 5, 'ana', 'message', 'uno'),
      (2, '#dev', 6, 'bea', 'action', 'saluda'), (3, '#lobby', 7, 'ana', 'message', 'dos');
    PRAGMA application_id = ${0x63686172};
    PRAGMA user_version = 1;
  `);
  v1.close();
  await using s = await open(path);
  assert.deepEqual(s.store.recent("#lobby", 10), [
    { room: "#lobby", time: 5, from: "ana", kind: "message", text: "uno" },
    { room: "#lobby", time: 7, from: "ana", kind: "message", text: "dos" },
  ]);
  assert.deepEqual(s.store.recent("#dev", 10).map((l) => [l.kind, l.text]), [["action", "saluda"]]);
  s.store.append(line("#lobby", "tres"));
  await s.store.flush();
  assert.deepEqual(fileTexts(path, "#lobby"), ["uno", "dos", "tres"]);
  // Each room with history has its row, with the id of its newest run.
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    assert.deepEqual(
      db.prepare("SELECT room, last FROM rooms ORDER BY room").all().map((r) => [r.room, r.last]),
      [["#dev", 2], ["#lobby", 4]],
    );
  } finally {
    db.close();
  }
});

Deno.test("SqliteStore's writer warms up at open and leaves no trace in the file", async () => {
  using dir = tempDir();
  const path = `${dir.path}/charla.db`;
  /** Every row of the file, read by another connection. */
  const rows = () => {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      return db.prepare("SELECT id, room, count FROM runs ORDER BY id").all()
        .map((r) => [r.id, r.room, r.count]);
    } finally {
      db.close();
    }
  };
  {
    await using s = await open(path);
    // The writer answers in order: this batch is written after the warm-up.
    s.store.appendBatch("#lobby", "ana", said(["hola", "¿qué tal?"]));
    await s.store.flush();
    // The warm-up's 3 MB went past SQLite's page cache into the WAL, uncommitted.
    const wal = Deno.statSync(`${path}-wal`).size;
    assert.ok(wal > 1024 * 1024, `${wal} bytes in the WAL`);
    assert.deepEqual(rows(), [[1, "#lobby", 2]]);
  }
  {
    await using s = await open(path);
    assert.deepEqual(s.store.recent("#lobby", 10).map((l) => l.text), ["hola", "¿qué tal?"]);
    s.store.append(line("#lobby", "bien"));
    await s.store.flush();
  }
  assert.deepEqual(rows(), [[1, "#lobby", 2], [3, "#lobby", 1]]);
});
