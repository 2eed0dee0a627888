/**
 * The SQLite store's writer: a worker thread that owns the one connection that
 * writes. node:sqlite is synchronous, and a commit of a few thousand lines
 * (about 3 µs a row here) plus the fsyncs of WAL checkpoints would otherwise
 * stall the chat's event loop; in this thread they only cost the core that runs it.
 *
 * The worker runs {@linkcode runWriter} from a `data:` URL made of its source
 * (see {@linkcode writerUrl}): a worker module loaded from a file needs
 * `--allow-read` for the program's own directory (tried: "Requires read access
 * to .../_sqlite_writer.ts"), which a user who grants only the database's
 * directory would not give. So `runWriter` must be self-contained: it uses only
 * its parameters and globals, no module-level value.
 *
 * The writer keeps no lines of its own: the main thread owns what is not yet
 * written, sends one batch at a time and waits for the answer, so a batch that
 * fails is still there to retry, in order. The writer only remembers how many
 * rows each room has, to prune past `keep` without counting on every commit.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Ban, StoredTopic } from "./store.ts";
import type { PackedRuns } from "./unwritten.ts";

/** A ban to write (`ban`), or to delete (`ban` null) by `mask`. */
export interface BanWrite {
  readonly mask: string;
  readonly ban: Ban | null;
}

/** What the main thread asks of the writer. */
export type WriterRequest =
  /** Settings; the writer opens its connection at once (and again after a failure). */
  | {
    readonly type: "open";
    readonly path: string;
    readonly keep: number;
    readonly pruneMs: number;
    readonly maxBytes: number | null;
    /** Topics kept: past this many rows, those set longest ago are deleted. */
    readonly maxTopics: number;
    /** Rooms with history kept: past this many, those written to longest ago lose theirs. */
    readonly maxRooms: number;
    /** Rooms someone is in (lower-cased): they keep their history whatever `maxRooms`. */
    readonly occupied: readonly string[];
  }
  /** A room got its first member, or lost its last. */
  | { readonly type: "occupied"; readonly room: string; readonly occupied: boolean }
  /**
   * One group commit: runs of lines (one row each) and the topic and ban
   * changes. The bytes are transferred, not copied.
   */
  | {
    readonly type: "write";
    readonly lines: PackedRuns;
    readonly topics: readonly StoredTopic[];
    readonly bans: readonly BanWrite[];
  }
  /** Close the connection and answer `closed`. */
  | { readonly type: "close" };

/** What the writer answers. */
export type WriterReply =
  /** The connection is open, or (`error`) could not be; writes will try again. */
  | { readonly type: "opened"; readonly error?: string }
  /** A write committed. */
  | { readonly type: "written"; readonly ok: true; readonly buffer: ArrayBuffer }
  /** A write failed and was rolled back; `code` is SQLite's primary result code, if known. */
  | {
    readonly type: "written";
    readonly ok: false;
    /** The write's bytes, handed back to be reused (none when the writer died). */
    readonly buffer?: ArrayBuffer;
    readonly code: number | null;
    readonly message: string;
  }
  /** Lines deleted past `keep`, or with the history of rooms past `maxRooms`. */
  | { readonly type: "pruned"; readonly lines: number }
  | { readonly type: "closed" };

/** The open connection and its prepared statements, reused for every commit. */
interface Connection {
  readonly db: DatabaseSync;
  readonly begin: StatementSync;
  readonly commit: StatementSync;
  readonly insertRun: StatementSync;
  /** {@linkcode ROWS_PER_INSERT} rows in one statement: fewer calls into SQLite. */
  readonly insertRuns: StatementSync;
  readonly putTopic: StatementSync;
  readonly putBan: StatementSync;
  readonly deleteBan: StatementSync;
  readonly countRoom: StatementSync;
  readonly countTopics: StatementSync;
  /** Deletes all topics but the newest `?`. */
  readonly pruneTopics: StatementSync;
  /** A room's rows, oldest first, to find where pruning stops. */
  readonly oldestRuns: StatementSync;
  readonly pruneRoom: StatementSync;
  readonly runText: StatementSync;
  readonly trimRun: StatementSync;
  /** Records a room's newest run (the rooms table: which rooms have history). */
  readonly putRoom: StatementSync;
  readonly countRooms: StatementSync;
  /** The `?` rooms written to longest ago. */
  readonly oldestRooms: StatementSync;
  /** Ranks a room with the one written to last: someone is in it. */
  readonly keepRoom: StatementSync;
  readonly deleteRoomRuns: StatementSync;
  readonly deleteRoom: StatementSync;
}

/** A commit's lines of one room: how many, and the id of its newest run. */
interface RoomTally {
  /** One spelling of the room's name (the first in the commit). */
  readonly room: string;
  n: number;
  last: number;
}

/** How many lines a room has, as far as this writer knows, and when it was last pruned. */
interface RoomRows {
  /** One spelling of the room's name, for queries (the column ignores case). */
  readonly room: string;
  count: number;
  prunedAt: number;
  /** The newest run's id as the rooms table has it. */
  recorded: number;
}

/** The worker's side of postMessage. */
export interface WriterScope {
  onmessage: ((event: MessageEvent<WriterRequest>) => void) | null;
  postMessage(message: WriterReply, transfer?: Transferable[]): void;
}

/**
 * The writer: answers {@linkcode WriterRequest}s posted to `scope`. Runs in a
 * worker, from its source text: it must not use anything from this module
 * but types (they are erased), nor from its surroundings.
 */
export function runWriter(
  DatabaseSyncClass: typeof DatabaseSync,
  scope: WriterScope,
): void {
  /** How long a write waits for a lock another program holds before it fails (and is retried). */
  const BUSY_TIMEOUT_MS = 5_000;
  /**
   * Rows per INSERT statement when a batch is large: one call into SQLite for
   * 50 rows instead of 50 (about a quarter less time a row, measured here).
   */
  const ROWS_PER_INSERT = 50;
  /**
   * WAL bytes before SQLite copies the pages back into the database: about
   * 40 MB rather than its 1,000 pages, so that the pages every commit touches
   * (the ends of the table and of its index) are copied once per many commits,
   * not once per few. It made inserts about a third cheaper here.
   * `journal_size_limit` gives the space back after each checkpoint.
   */
  const WAL_BYTES = 40_000_000;
  /** Batches inserted and rolled back at open (see warmUp). */
  const WARM_UP_WRITES = 40;
  /** Expired bans are deleted at most this often. */
  const EXPIRED_BANS_EVERY_MS = 3_600_000;

  /** Settings from the `open` request. */
  let settings: Extract<WriterRequest, { type: "open" }> | null = null;
  /** Null until opened, and again after a failure, so the next write reopens it. */
  let connection: Connection | null = null;
  /**
   * By lower-cased room name, the one written to least recently first; filled
   * as rooms are written to, and at most MAX_COUNTED_ROOMS of them (a room
   * that left is counted again when it is next written to).
   */
  const rooms = new Map<string, RoomRows>();
  /**
   * Rooms whose line counts are kept. A flood of new rooms must not grow this
   * thread's memory for good. A room that left is counted again (one indexed
   * query) when it is next written to, and pruned then if it must be: until
   * then it cannot grow.
   */
  const MAX_COUNTED_ROOMS = 10_000;
  /** Rows of the topics table, at most: counted at open, then one more per topic written. */
  let topicRows = 0;
  /**
   * Rows of the rooms table, at most: counted at open, then one more per room
   * written that is not among those counted (`rooms`), which may have a row
   * already: counted again before rooms lose their history.
   */
  let roomRows = 0;
  /**
   * A room's row in the rooms table is written when the room is first
   * written to in this run, and then when its newest run is this many ids
   * (lines, across rooms) past the row: on every commit, it doubled the
   * bytes a one-line commit writes (a page of the table and one of its
   * index: 31.7 KB instead of 13.7, measured). So the order rooms lose their
   * history in is that of their last lines give or take this many lines.
   */
  const RECORD_EVERY = 1_000;
  /**
   * Rooms that lose their history in one pass, at most, and the lines past
   * which a pass stops after the room it is at: a pass is one transaction,
   * and commits wait for it.
   */
  const EVICT_ROOMS_PER_PASS = 100;
  const EVICT_LINES_PER_PASS = 10_000;
  /** True from when `roomRows` goes a sixteenth past `maxRooms` until it is back to it. */
  let evicting = false;
  /** Rooms someone is in, by lower-cased name: passes leave their history alone. */
  const occupied = new Set<string>();
  /** A prune that waits for a room's `pruneMs` to pass. */
  let pruneTimer: ReturnType<typeof setTimeout> | undefined;
  let expiredBansAt = -Infinity;

  scope.onmessage = (event) => {
    const request = event.data;
    switch (request.type) {
      case "open": {
        settings = request;
        for (const room of request.occupied) occupied.add(room);
        let error: string | undefined;
        try {
          connect();
        } catch (e) {
          error = describe(e).message;
        }
        // A worker's first timer and first transfer load runtime code (about 15 ms
        // here): now, while the server starts, not on the first writes under load.
        // And a buffer with two views, as every write's has (the request's and
        // the rows'), so that V8 drops the code it compiled assuming no buffer
        // is ever detached now, before warmUp() compiles insert(), rather than
        // at the first answer under load (a buffer with one view does not).
        clearTimeout(setTimeout(() => {}, 0));
        const warm = new Uint8Array(1);
        warm.subarray(0);
        scope.postMessage(error === undefined ? { type: "opened" } : { type: "opened", error }, [
          warm.buffer,
        ]);
        warmUp();
        break;
      }
      case "write":
        write(request);
        break;
      case "occupied":
        if (request.occupied) occupied.add(request.room);
        else occupied.delete(request.room);
        break;
      case "close":
        clearTimeout(pruneTimer);
        disconnect();
        scope.postMessage({ type: "closed" });
        break;
    }
  };

  /** Opens the connection if it is not open; throws what SQLite throws. */
  function connect(): Connection {
    if (connection !== null) return connection;
    if (settings === null) throw new Error("The writer was not told which database to open");
    const db = new DatabaseSyncClass(settings.path, { timeout: BUSY_TIMEOUT_MS });
    try {
      // WAL: readers (the main thread's replays) never wait for this writer, and a
      // commit is one append to the -wal file. synchronous=NORMAL: a commit is
      // written (not fsynced) before it is reported, so it survives the process
      // being killed; only a power loss or OS crash can take the last commits back.
      // FULL would fsync every group commit, for a promise the README does not make.
      // cache_size: 1 MiB, not SQLite's 16: the writer only appends, and each
      // page of a larger cache was fresh memory, touched once (first-touch page
      // faults: 1,000 a run of 250,000 lines, against about 650).
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -1024");
      const { page_size } = db.prepare("PRAGMA page_size").get() as { page_size: number };
      db.exec(
        `PRAGMA wal_autocheckpoint = ${Math.ceil(WAL_BYTES / page_size)}; ` +
          "PRAGMA journal_size_limit = 67108864",
      );
      if (settings.maxBytes !== null) {
        db.exec(
          `PRAGMA max_page_count = ${Math.max(1, Math.floor(settings.maxBytes / page_size))}`,
        );
      }
      connection = {
        db,
        // Prepared statements rather than exec("BEGIN"), so errors carry SQLite's code.
        begin: db.prepare("BEGIN IMMEDIATE"),
        commit: db.prepare("COMMIT"),
        // OR IGNORE: a retry after a commit whose outcome was unknown must not fail forever.
        insertRun: db.prepare(
          "INSERT OR IGNORE INTO runs (id, room, time, name, kind, count, text) " +
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
        ),
        insertRuns: db.prepare(
          "INSERT OR IGNORE INTO runs (id, room, time, name, kind, count, text) VALUES " +
            Array(ROWS_PER_INSERT).fill("(?, ?, ?, ?, ?, ?, ?)").join(", "),
        ),
        putTopic: db.prepare(
          "INSERT OR REPLACE INTO topics (room, topic, by, time) VALUES (?, ?, ?, ?)",
        ),
        putBan: db.prepare(
          "INSERT OR REPLACE INTO bans (mask, kind, reason, since, until) VALUES (?, ?, ?, ?, ?)",
        ),
        deleteBan: db.prepare("DELETE FROM bans WHERE mask = ?"),
        countRoom: db.prepare("SELECT coalesce(sum(count), 0) AS n FROM runs WHERE room = ?"),
        countTopics: db.prepare("SELECT count(*) AS n FROM topics"),
        pruneTopics: db.prepare(
          "DELETE FROM topics WHERE rowid NOT IN " +
            "(SELECT rowid FROM topics ORDER BY time DESC LIMIT ?)",
        ),
        oldestRuns: db.prepare("SELECT id, count FROM runs WHERE room = ? ORDER BY id"),
        pruneRoom: db.prepare("DELETE FROM runs WHERE room = ? AND id < ?"),
        runText: db.prepare("SELECT text FROM runs WHERE id = ?"),
        trimRun: db.prepare("UPDATE runs SET id = ?, count = ?, text = ? WHERE id = ?"),
        putRoom: db.prepare(
          "INSERT INTO rooms (room, last) VALUES (?, ?) " +
            "ON CONFLICT (room) DO UPDATE SET last = max(last, excluded.last)",
        ),
        countRooms: db.prepare("SELECT count(*) AS n FROM rooms"),
        oldestRooms: db.prepare("SELECT room FROM rooms ORDER BY last LIMIT ?"),
        keepRoom: db.prepare(
          "UPDATE rooms SET last = (SELECT max(last) FROM rooms) WHERE room = ?",
        ),
        deleteRoomRuns: db.prepare("DELETE FROM runs WHERE room = ?"),
        deleteRoom: db.prepare("DELETE FROM rooms WHERE room = ?"),
      };
      topicRows = (connection.countTopics.get() as { n: number }).n;
      roomRows = (connection.countRooms.get() as { n: number }).n;
      return connection;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** Closes the connection; the next write opens a new one. */
  function disconnect(): void {
    const open = connection;
    connection = null;
    try {
      open?.db.close();
    } catch {
      // Closing a connection whose file went away can fail; it is closed all the same.
    }
  }

  /**
   * Inserts each run as one row: whole statements of ROWS_PER_INSERT rows,
   * then the rest one by one. The writes and the warm-up both run it.
   */
  function insert(c: Connection, { bytes, runs }: PackedRuns): void {
    const whole = runs.length - runs.length % ROWS_PER_INSERT;
    const args: (string | number | Uint8Array)[] = new Array(ROWS_PER_INSERT * 7);
    let k = 0;
    let at = 0;
    for (let r = 0; r < runs.length; r++) {
      const [id, room, name, kind, time, count, length] = runs[r];
      // Each line is followed by a newline: the row keeps those between lines.
      // As a blob: no decoding here, and no encoding again to bind it (a
      // third of the insert's time for rows of a few hundred lines).
      const text = bytes.subarray(at, at + length - 1);
      if (r >= whole) c.insertRun.run(id, room, time, name, kind, count, text);
      else {
        args[k++] = id;
        args[k++] = room;
        args[k++] = time;
        args[k++] = name;
        args[k++] = kind;
        args[k++] = count;
        args[k++] = text;
        if (k === args.length) {
          c.insertRuns.run(...args);
          k = 0;
        }
      }
      at += length;
    }
  }

  /**
   * Runs the insert path in a transaction that is rolled back, so that V8
   * compiles it and this thread's memory (V8's heap, SQLite's page cache and
   * allocations) grows while the server starts rather than in the first burst
   * of lines. Measured in a fresh server's first burst of 250,000 lines (10
   * senders, 10 clients): this thread took 43-47 ms and 151-160 page faults
   * instead of 56-67 ms and about 900. The rows (3 MB) are more than the page
   * cache holds, so SQLite writes some to the WAL as uncommitted frames: the
   * rollback leaves them out of the database, and the next commit writes over
   * them. A lock held elsewhere makes it wait, as the first write would.
   */
  function warmUp(): void {
    const c = connection;
    if (c === null) return;
    // Alternately one large run (overflow pages, as a burst's) and a
    // statement's worth of smaller ones (the multi-row insert).
    const small = 2_560;
    const large = 16 * 1024;
    const bytes = new Uint8Array(Math.max(small * (ROWS_PER_INSERT + 1), large));
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 64 === 63 ? 0x0a : 0x61;
    let id = -(2 ** 40);
    try {
      c.begin.run();
      for (let w = 0; w < WARM_UP_WRITES; w++) {
        const n = w % 2 === 0 ? 1 : ROWS_PER_INSERT + 1;
        const length = n === 1 ? large : small;
        const runs: [number, string, string, string, number, number, number][] = [];
        for (let r = 0; r < n; r++) {
          runs.push([id, "#warm-up", "warm-up", "message", 0, length / 64, length]);
          id += length / 64;
        }
        // Through the structured clone a request comes through, so that the
        // objects have the shapes V8 compiles insert() for.
        insert(c, structuredClone({ bytes: bytes.subarray(0, n * length), runs }));
      }
    } catch {
      // A read-only or full file: the first write says so.
    } finally {
      rollBack(c);
    }
  }

  /**
   * Ends `c`'s transaction, if one is open, without committing; a failure
   * here is left to the next write, which fails and reopens the connection.
   */
  function rollBack(c: Connection): void {
    try {
      if (c.db.isTransaction) c.db.exec("ROLLBACK");
    } catch {
      // Rolled back when the connection closes.
    }
  }

  /** One group commit; answers `written`, then prunes what is due. */
  function write(request: Extract<WriterRequest, { type: "write" }>): void {
    const tallies = tally(request.lines);
    try {
      const c = connect();
      c.begin.run();
      try {
        insert(c, request.lines);
        for (const [key, { room, last }] of tallies) {
          if (recordDue(rooms.get(key), last)) c.putRoom.run(room, last);
        }
        for (const t of request.topics) c.putTopic.run(t.room, t.topic, t.by, t.time);
        topicRows += request.topics.length; // or fewer: some replaced a row
        for (const { mask, ban } of request.bans) {
          if (ban === null) c.deleteBan.run(mask);
          else c.putBan.run(ban.mask, ban.kind, ban.reason, ban.since, ban.until);
        }
        c.commit.run();
      } catch (e) {
        // SQLite rolls some failures (a full disk, say) back by itself.
        if (c.db.isTransaction) c.db.exec("ROLLBACK");
        throw e;
      }
    } catch (e) {
      // Reopen on the next try: a file made writable again, or replaced, is only
      // seen by a new connection.
      disconnect();
      const { code, message } = describe(e);
      const buffer = request.lines.bytes.buffer;
      scope.postMessage({ type: "written", ok: false, code, message, buffer }, [buffer]);
      return;
    }
    // The buffer goes back for the next write: a fresh one per write costs the
    // chat thread more than copying into it (first-touch page faults).
    const buffer = request.lines.bytes.buffer;
    scope.postMessage({ type: "written", ok: true, buffer }, [buffer]);
    count(tallies);
    prune();
  }

  /** A commit's lines by lower-cased room name. */
  function tally(lines: PackedRuns): Map<string, RoomTally> {
    const added = new Map<string, RoomTally>();
    let spelling: string | undefined;
    let tally: RoomTally = { room: "", n: 0, last: 0 };
    for (const [id, room, , , , n] of lines.runs) {
      // A room's lines come in runs: look the room up once per run.
      if (room !== spelling) {
        spelling = room;
        const key = spelling.toLowerCase();
        const known = added.get(key);
        if (known === undefined) added.set(key, tally = { room: spelling, n: 0, last: id });
        else tally = known;
      }
      tally.n += n;
      tally.last = Math.max(tally.last, id);
    }
    return added;
  }

  /** Whether a commit's newest run `last` of a room goes into its row of the rooms table. */
  function recordDue(rows: RoomRows | undefined, last: number): boolean {
    return rows === undefined || last - rows.recorded >= RECORD_EVERY;
  }

  /**
   * Adds a commit's lines to the rooms' line counts, and what it wrote to the
   * rooms table (it asked `recordDue` of the same rows: nothing changes them between).
   */
  function count(added: Map<string, RoomTally>): void {
    for (const [key, { room, n, last }] of added) {
      const rows = rooms.get(key);
      if (rows !== undefined) {
        if (recordDue(rows, last)) rows.recorded = last;
        rows.count += n;
        rooms.delete(key); // to the end: written to most recently
        rooms.set(key, rows);
        continue;
      }
      roomRows++; // perhaps a room new to the file
      try {
        // First time this run: count what is there, this commit included.
        const { n: count } = connection!.countRoom.get(room) as { n: number };
        rooms.set(key, { room, count, prunedAt: -Infinity, recorded: last });
        if (rooms.size > MAX_COUNTED_ROOMS + (MAX_COUNTED_ROOMS >> 4)) {
          // Down to the bound in one pass (as store.ts setNewest does, and why).
          for (const old of rooms.keys()) {
            rooms.delete(old);
            if (rooms.size <= MAX_COUNTED_ROOMS) break;
          }
        }
      } catch {
        // Counted on the room's next commit.
      }
    }
  }

  /**
   * Deletes each room's rows past `keep`, at most once per `pruneMs` per room,
   * and expired bans once an hour, in one transaction. A prune that fails is
   * left for the next commit: a failure that lasts shows up in the writes.
   */
  function prune(): void {
    if (settings === null || connection === null) return;
    const { keep, pruneMs } = settings;
    const c = connection;
    const now = performance.now();
    const due: RoomRows[] = [];
    let wait = Infinity;
    for (const rows of rooms.values()) {
      if (rows.count <= keep) continue;
      const at = rows.prunedAt + pruneMs;
      if (at <= now) due.push(rows);
      else wait = Math.min(wait, at - now);
    }
    const bans = now - expiredBansAt >= EXPIRED_BANS_EVERY_MS;
    // A tenth over before deleting, so that a flood of topics costs one
    // delete per thousand, not one per commit.
    const topics = topicRows > settings.maxTopics * 1.1;
    // A sixteenth over before passes start, for the same reason; then passes
    // until the bound.
    if (roomRows > settings.maxRooms + (settings.maxRooms >> 4)) evicting = true;
    const evict = evicting;
    let deleted = 0;
    if (due.length > 0 || bans || topics || evict) {
      try {
        c.begin.run();
        const evicted = evict ? evictRooms(c, settings.maxRooms) : null;
        if (evicted !== null) deleted += evicted.lines;
        const counts = due.map((rows) => pruneRoom(c, rows.room, rows.count - keep));
        if (bans) {
          c.db.prepare("DELETE FROM bans WHERE until IS NOT NULL AND until <= ?").run(Date.now());
        }
        if (topics) c.pruneTopics.run(settings.maxTopics);
        c.commit.run();
        if (topics) topicRows = (c.countTopics.get() as { n: number }).n;
        if (evicted !== null) {
          roomRows = evicted.left;
          // A pass that found only rooms people are in stops here: the next
          // commit past the bound tries again.
          evicting = roomRows > settings.maxRooms && evicted.rooms > 0;
          if (evicting) wait = 0; // the next pass
        }
        due.forEach((rows, i) => {
          rows.count -= counts[i];
          rows.prunedAt = now;
          deleted += counts[i];
        });
        if (bans) expiredBansAt = now;
      } catch {
        // See above; the connection is left to the next write, which reopens it if it must.
        rollBack(c);
        deleted = 0;
      }
    }
    if (deleted > 0) scope.postMessage({ type: "pruned", lines: deleted });
    clearTimeout(pruneTimer);
    pruneTimer = wait === Infinity ? undefined : setTimeout(prune, Math.ceil(wait));
  }

  /**
   * Deletes the history of the rooms written to longest ago, towards `max`
   * rooms with history: at most {@linkcode EVICT_ROOMS_PER_PASS} rooms, and
   * no room after {@linkcode EVICT_LINES_PER_PASS} lines. A room someone is
   * in is ranked with the newest instead. Returns the rooms and lines
   * deleted and the rooms with history left. In the caller's transaction.
   */
  function evictRooms(
    c: Connection,
    max: number,
  ): { rooms: number; lines: number; left: number } {
    let left = (c.countRooms.get() as { n: number }).n;
    let lines = 0;
    let deleted = 0;
    const over = Math.min(left - max, EVICT_ROOMS_PER_PASS);
    if (over <= 0) return { rooms: 0, lines, left };
    for (const { room } of c.oldestRooms.all(over) as { room: string }[]) {
      const key = room.toLowerCase();
      if (occupied.has(key)) {
        c.keepRoom.run(room);
        continue;
      }
      lines += (c.countRoom.get(room) as { n: number }).n;
      c.deleteRoomRuns.run(room);
      c.deleteRoom.run(room);
      rooms.delete(key);
      deleted++;
      left--;
      if (lines >= EVICT_LINES_PER_PASS) break;
    }
    return { rooms: deleted, lines, left };
  }

  /**
   * Deletes the oldest `lines` lines of `room`: whole rows, and the first
   * lines of the row that holds the last of them. Returns how many went.
   */
  function pruneRoom(c: Connection, room: string, lines: number): number {
    let deleted = 0;
    let cut: number | null = null;
    let trim: { id: number; count: number; lines: number } | null = null;
    for (const row of c.oldestRuns.iterate(room) as Iterable<{ id: number; count: number }>) {
      if (deleted + row.count > lines) {
        cut = row.id;
        if (deleted < lines) trim = { id: row.id, count: row.count, lines: lines - deleted };
        break;
      }
      deleted += row.count;
    }
    if (cut === null) {
      c.pruneRoom.run(room, Number.MAX_SAFE_INTEGER);
      return deleted;
    }
    c.pruneRoom.run(room, cut);
    if (trim !== null) {
      const { text } = c.runText.get(trim.id) as { text: Uint8Array | string };
      // A blob as this writer makes them (text only if another program put it there).
      const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
      let at = 0;
      for (let n = 0; n < trim.lines; n++) at = bytes.indexOf(0x0a, at) + 1;
      c.trimRun.run(trim.id + trim.lines, trim.count - trim.lines, bytes.subarray(at), trim.id);
      deleted += trim.lines;
    }
    return deleted;
  }

  /** SQLite's primary result code and message, from what node:sqlite threw. */
  function describe(e: unknown): { code: number | null; message: string } {
    const errcode = (e as { errcode?: unknown }).errcode;
    return {
      code: typeof errcode === "number" ? errcode & 0xff : null,
      message: e instanceof Error ? e.message : String(e),
    };
  }
}

/**
 * A `data:` URL of a module that runs {@linkcode runWriter} in a worker; it
 * needs no permission to load. (`deno test --coverage` instruments function
 * bodies with counters from outside them, which would break this source.)
 */
export function writerUrl(): string {
  const source = `import { DatabaseSync } from "node:sqlite";\n` +
    `(${runWriter.toString()})(DatabaseSync, globalThis);\n`;
  return `data:text/javascript,${encodeURIComponent(source)}`;
}
