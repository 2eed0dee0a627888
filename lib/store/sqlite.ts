/**
 * The durable store (`--db FILE`): room history, topics and bans in one SQLite
 * file, through `node:sqlite`.
 *
 * The chat never waits for the disk. {@linkcode SqliteStore.appendBatch} (and
 * `append()`, for a single line) puts lines in their room's recent-lines log
 * (what `recent()` answers from) and, as bytes, in a queue (`Unwritten`), the
 * lines said together as one run, one row of the file; the queue
 * goes to a writer thread as one transaction every few milliseconds (the
 * group-commit window, 5 ms by default) or as soon as it holds `batchLines`
 * lines, one batch at a time, so a busy writer gets bigger batches rather than
 * a backlog of small ones. A line is durable once its commit is reported
 * (`stored`, whose `ms` is how long the batch's oldest line waited, from
 * append() to the end of its commit): from then on it survives the process
 * being killed.
 *
 * When a write fails (disk full, permission lost), the store says so once
 * (`failed`), keeps the lines it could not write (up to `maxPending`, dropping
 * the oldest and counting them), retries with backoff (50 ms doubling to 2 s)
 * and says `recovered` when a write works again. A writer that cannot keep up
 * (more than `maxPending` lines waiting) drops the oldest the same way and
 * says so. The chat goes on meanwhile, history included.
 *
 * What the file needs: `--allow-read` and `--allow-write` for it (or for its
 * directory; Deno checks the database's own path only), and a directory the
 * process may write, since SQLite keeps `FILE-wal` and `FILE-shm` beside it.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { HistoryLine, LineKind, RoomName } from "../core/messages.ts";
import { type LineBatch, LineLog } from "./line_log.ts";
import { type Entry, fillPool, runEntries, touchedBuffer, Unwritten } from "./unwritten.ts";
import {
  type Ban,
  MAX_HISTORY_ROOMS,
  MAX_TOPICS,
  setNewest,
  type Store,
  type StoredTopic,
  StoreError,
  type StoreEvent,
  type StoreOptions,
} from "./store.ts";
import {
  type BanWrite,
  type WriterReply,
  type WriterRequest,
  writerUrl,
} from "./_sqlite_writer.ts";

/** The schema version this program writes, kept in `PRAGMA user_version`. */
export const SCHEMA_VERSION = 3;

const decoder = new TextDecoder();

/** The page size of a new database file. */
const PAGE_SIZE = 8192;

/** `PRAGMA application_id` of a charla database ("char"), so another program's file is refused. */
export const APPLICATION_ID = 0x63686172;

/**
 * The steps from each schema version to the next: `MIGRATIONS[v]` takes a
 * database at version `v` to `v + 1`, inside the transaction that then sets
 * `user_version`. Version 0 is an empty file. A new version is one more step.
 */
const MIGRATIONS: readonly ((db: DatabaseSync) => void)[] = [
  (db) =>
    db.exec(`
      CREATE TABLE lines (
        id INTEGER PRIMARY KEY,        -- the order lines were said in, across rooms
        room TEXT NOT NULL COLLATE NOCASE,
        time INTEGER NOT NULL,         -- milliseconds since the epoch
        name TEXT NOT NULL,            -- who said it, by name at the time
        kind TEXT NOT NULL,            -- message | action | notice
        text TEXT NOT NULL
      );
      -- A room's last lines, and its oldest ones for pruning.
      CREATE INDEX lines_by_room ON lines (room, id);
      CREATE TABLE topics (
        room TEXT PRIMARY KEY COLLATE NOCASE,
        topic TEXT NOT NULL,
        by TEXT NOT NULL,
        time INTEGER NOT NULL
      );
      CREATE TABLE bans (
        mask TEXT PRIMARY KEY COLLATE NOCASE,
        kind TEXT NOT NULL,            -- name | address
        reason TEXT NOT NULL,
        since INTEGER NOT NULL,
        until INTEGER                  -- null: until lifted
      );
    `),
  // One row per run of lines said together (one person, one room, one kind, one
  // time) rather than per line: a row costs the writer about 3 µs, a line of a
  // run almost nothing, so relaying 250,000 lines a second no longer takes a core.
  (db) =>
    db.exec(`
      CREATE TABLE runs (
        id INTEGER PRIMARY KEY,        -- its first line's id; its lines are id, id + 1, ...
                                       -- (ids: the order lines were said in, across rooms)
        room TEXT NOT NULL COLLATE NOCASE,
        time INTEGER NOT NULL,         -- milliseconds since the epoch
        name TEXT NOT NULL,            -- who said them, by name at the time
        kind TEXT NOT NULL,            -- message | action | notice
        count INTEGER NOT NULL,        -- how many lines
        text BLOB NOT NULL             -- their UTF-8, each but the last followed by a newline
      );
      INSERT INTO runs (id, room, time, name, kind, count, text)
        SELECT id, room, time, name, kind, 1, CAST(replace(text, char(10), '^J') AS BLOB)
        FROM lines;
      DROP TABLE lines;
      -- A room's last runs, and its oldest ones for pruning.
      CREATE INDEX runs_by_room ON runs (room, id);
    `),
  // The rooms that have history, by their newest run: the writer keeps the
  // MAX_HISTORY_ROOMS written to most recently, and finds the others here
  // without reading every run.
  (db) =>
    db.exec(`
      CREATE TABLE rooms (
        room TEXT PRIMARY KEY COLLATE NOCASE,
        last INTEGER NOT NULL          -- the id of its newest run
      ) WITHOUT ROWID;
      CREATE INDEX rooms_by_last ON rooms (last);
      INSERT INTO rooms (room, last) SELECT room, max(id) FROM runs GROUP BY room;
    `),
];

/** Options of {@linkcode SqliteStore.open}, beyond {@linkcode StoreOptions}. */
export interface SqliteStoreOptions extends StoreOptions {
  /**
   * The group-commit window: the longest a line waits before its commit
   * starts, in milliseconds. What a crash can lose is at most this plus one
   * commit's time.
   * @default {5}
   */
  commitMs?: number;
  /**
   * Most lines in one commit (at most `maxPending`); a batch this large goes at once.
   * @default {10000}
   */
  batchLines?: number;
  /**
   * Lines of each room kept in memory (at most `keep`), so that replaying
   * history on join reads no disk; `recent()` reads older ones from the file.
   * @default {1000}
   */
  cacheLines?: number;
  /**
   * Most bytes of memory those lines take in all, counting each room's
   * `LineLog.footprint`: past it, the rooms written to least recently leave
   * memory (their lines stay in the file, and a replay reads them there), so
   * that many rooms cannot take the server's memory.
   * @default {67108864}
   */
  cacheBytes?: number;
  /**
   * Most unwritten lines kept while writes fail; past it the oldest are
   * dropped and counted (in `recovered`).
   * @default {100000}
   */
  maxPending?: number;
  /** Shortest time between two prunes of one room, in milliseconds. @default {1000} */
  pruneMs?: number;
  /**
   * Largest the database may grow to, in bytes, like a disk quota: past it
   * writes fail as on a full disk. Null: no limit.
   * @default {null}
   */
  maxBytes?: number | null;
}

/** A room's recent lines in memory. */
interface RoomCache {
  /** The last `cacheLines` lines, with their ids. */
  log: LineLog;
  /**
   * Whether the room has no line older than the log's oldest, anywhere: known
   * once a read from the file found fewer than it asked for, and true only
   * while the log is not full (a full log drops its oldest lines).
   */
  complete: boolean;
}

/** A batch at the writer, kept until it answers so that a failed one can be retried. */
interface Flight {
  /** How many lines it holds. */
  readonly lines: number;
  /** The id of its last line; NaN when it holds none. */
  readonly last: number;
  readonly topics: StoredTopic[];
  readonly bans: BanWrite[];
  /** When its oldest line was appended (`performance.now()`). */
  readonly since: number;
  /** The topic and ban changes it carries: all up to this count. */
  readonly ops: number;
}

/** A `flush()` waiting for everything up to these counts to be written. */
interface FlushWaiter {
  readonly line: number;
  readonly ops: number;
  readonly resolve: () => void;
}

/** A row of `runs`. */
interface RunRow {
  id: number;
  room: string;
  time: number;
  name: string;
  kind: string;
  /** A blob, as the writer makes it; text if another program put one there. */
  text: Uint8Array | string;
}

/** The writer's module, made once (see _sqlite_writer.ts for why a `data:` URL). */
let WRITER_URL: string | undefined;
/** How long opening waits for a lock another program holds. */
const OPEN_TIMEOUT_MS = 1_000;
/** First retry after a failed write; it doubles up to {@linkcode RETRY_MAX_MS}. */
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 2_000;
/**
 * The buffer the first batch is copied into, made at open: 10,000 lines (a
 * full batch) of 100 bytes. A larger batch gets a larger one, kept from then on.
 */
const SPARE_BYTES = 1024 * 1024;
/** SQLite primary result codes the messages tell apart. */
const SQLITE_PERM = 3;
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_READONLY = 8;
const SQLITE_IOERR = 10;
const SQLITE_CORRUPT = 11;
const SQLITE_FULL = 13;
const SQLITE_CANTOPEN = 14;
const SQLITE_NOTADB = 26;

/**
 * History, topics and bans in a SQLite file; see the module doc for how lines
 * are written and what a failure does.
 *
 * @example
 * ```ts
 * import { SqliteStore } from "./sqlite.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/charla.db`;
 * let store = await SqliteStore.open(path);
 * store.append({ room: "#lobby", time: 0, from: "ana", kind: "message", text: "hola" });
 * await store.close();
 *
 * store = await SqliteStore.open(path); // after a restart
 * assert.deepEqual(store.recent("#Lobby", 50).map((line) => line.text), ["hola"]);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class SqliteStore implements Store, AsyncDisposable {
  readonly description: string;
  readonly #path: string;
  readonly #keep: number;
  readonly #commitMs: number;
  readonly #batchLines: number;
  /** Lines kept in memory per room: `cacheLines`, at most `keep`. */
  readonly #cacheLines: number;
  readonly #maxPending: number;
  readonly #pruneMs: number;
  readonly #maxBytes: number | null;
  readonly #onEvent: (event: StoreEvent) => void;
  /**
   * An exclusive flock on the database file, held while the store is open, so
   * that a second charla on the same file is refused at open (two writers
   * would hand out the same row ids). flock and SQLite's POSIX locks do not
   * interact on Linux; it is closed last, after every SQLite connection,
   * because closing any descriptor of a file drops the process's POSIX locks on it.
   */
  readonly #lock: Deno.FsFile;
  /** The writer thread; null before it starts and after it died (the next write starts one). */
  #worker: Worker | null = null;
  /** Called with the writer's `opened` answer. */
  #opened: ((error: string | undefined) => void) | null = null;
  /** Rooms someone is in, by lower-cased name: their history is kept (see `occupied`). */
  readonly #occupied = new Set<string>();

  /** Recent lines by lower-cased room name, the one used least recently first. */
  readonly #rooms = new Map<string, RoomCache>();
  /** The footprints of the rooms' logs, kept within `cacheBytes`. */
  #cacheBytes = 0;
  readonly #maxCacheBytes: number;
  /** The room last looked up, as spelled then, and its cache (the last in `#rooms`). */
  #lastRoom: string | null = null;
  #lastCache: RoomCache | null = null;
  /** By lower-cased room name: what `topics()` answers. */
  readonly #topics = new Map<string, StoredTopic>();
  /** By lower-cased mask: what `bans()` answers (filtered for expiry). */
  readonly #bans = new Map<string, Ban>();

  /** The id the next line gets; ids are row ids, in the order lines were appended. */
  #nextId: number;
  /** Lines not yet written: the batch at the writer, and those waiting. */
  readonly #queue = new Unwritten();
  /** Topic and ban changes not yet sent, by lower-cased key (a later change replaces). */
  #topicWrites = new Map<string, StoredTopic>();
  #banWrites = new Map<string, BanWrite>();
  /**
   * When the oldest unsent line or change was made (`performance.now()`),
   * for the window timer; null: none. While a backlog lasts it stays at the
   * backlog's start, which only makes the next batch go sooner.
   */
  #pendingSince: number | null = null;
  /** Topic and ban changes made so far, for `flush()`. */
  #ops = 0;
  /** The batch at the writer, if any: one at a time. */
  #flight: Flight | null = null;
  /** The buffer of the last batch, back from the writer, for the next. */
  #spare: ArrayBuffer | null = null;
  /** Resolves with whether the batch at the writer was written. */
  #landed: PromiseWithResolvers<boolean> | null = null;
  /** Everything up to these is written (or dropped): the last line id and change count. */
  #writtenLine: number;
  #writtenOps = 0;
  readonly #waiters: FlushWaiter[] = [];
  /** The group-commit window's timer, while lines wait in it. */
  #windowTimer: ReturnType<typeof setTimeout> | undefined;

  /** Whether the last write failed (reported once, until one works again). */
  #failing = false;
  /** Why, for the message at close. */
  #failure = "";
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retryMs = RETRY_FIRST_MS;
  /**
   * Whether lines were dropped because the writer could not keep up (without
   * a failed write): reported like a failure, until the queue is short again.
   */
  #behind = false;
  /** Lines dropped since writes began to fail or fall behind. */
  #dropped = 0;
  /** Whether a failed read was reported; a read that works clears it. */
  #readFailing = false;
  /** Set by close(); from then on appends and changes are ignored. */
  #closing: Promise<void> | null = null;
  #closed = false;

  private constructor(
    path: string,
    lock: Deno.FsFile,
    loaded: { nextId: number; topics: StoredTopic[]; bans: Ban[] },
    options: SqliteStoreOptions,
  ) {
    this.description = `sqlite ${path}`;
    this.#path = path;
    this.#lock = lock;
    this.#keep = options.keep ?? 10_000;
    this.#commitMs = options.commitMs ?? 5;
    this.#maxPending = options.maxPending ?? 100_000;
    // A batch larger than what may wait would be dropped before it could go.
    this.#batchLines = Math.min(options.batchLines ?? 10_000, this.#maxPending);
    this.#cacheLines = Math.min(options.cacheLines ?? 1_000, this.#keep);
    this.#maxCacheBytes = options.cacheBytes ?? 64 * 1024 * 1024;
    this.#pruneMs = options.pruneMs ?? 1_000;
    this.#maxBytes = options.maxBytes ?? null;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#nextId = loaded.nextId;
    this.#writtenLine = loaded.nextId - 1;
    for (const topic of loaded.topics) this.#topics.set(topic.room.toLowerCase(), topic);
    for (const ban of loaded.bans) this.#bans.set(ban.mask.toLowerCase(), ban);
  }

  /**
   * Opens (or creates) the database at `path`, migrating an older schema, and
   * starts its writer. Throws a {@linkcode StoreError} saying what to do when
   * the file cannot be used: not a database, corrupt, another program's, a
   * newer schema, in use or locked, no permission.
   */
  static async open(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    checkOptions(options);
    const lock = lockFile(path);
    let loaded;
    try {
      loaded = prepare(path);
    } catch (e) {
      lock.close();
      throw e;
    }
    const store = new SqliteStore(path, lock, loaded, options);
    fillPool();
    store.#spare = touchedBuffer(SPARE_BYTES);
    const error = await store.#startWriter();
    if (error !== undefined) store.#fail(null, null, error);
    return store;
  }

  /**
   * Lines appended and not yet written: those waiting for their commit, and
   * while writes fail, those kept for the retry (at most about `maxPending`).
   */
  get pending(): number {
    return this.#queue.lines + (this.#flight?.lines ?? 0);
  }

  /** Bytes of memory the rooms' recent lines take (their footprints): for tests and diagnostics. */
  get cachedBytes(): number {
    return this.#cacheBytes;
  }

  append(line: HistoryLine): void {
    if (this.#closing !== null) return;
    const id = this.#nextId++;
    const cache = this.#cache(line.room);
    const before = cache.log.footprint;
    cache.log.appendText(line.from, line.kind, line.time, line.text, id);
    this.#cached(cache, before);
    this.#queue.addText(id, line.room, line.from, line.kind, line.time, line.text);
    this.#appended();
  }

  /**
   * Keeps a relayed batch's lines as bytes: no string or object per line, and
   * one row of the file for the lot (see {@linkcode Unwritten}).
   */
  appendBatch(room: RoomName, from: string, batch: LineBatch): void {
    const count = batch.ends.length;
    if (this.#closing !== null || count === 0) return;
    const id = this.#nextId;
    this.#nextId += count;
    const cache = this.#cache(room);
    const before = cache.log.footprint;
    cache.log.append(from, batch, id);
    this.#cached(cache, before);
    this.#queue.addBatch(id, room, from, batch);
    this.#appended();
  }

  recent(room: RoomName, count: number): HistoryLine[] {
    const n = Math.min(Math.floor(count), this.#keep);
    if (!(n > 0)) return [];
    const cache = this.#cache(room);
    const size = cache.log.size;
    if (n <= size) return cache.log.last(n);
    const kept = cache.log.entries(size);
    const full = size === this.#cacheLines;
    if (cache.complete && !full) return kept.map((k) => k.line);
    // The first replay of a room this run, or more than memory holds: one query.
    const older = this.#older(room, size > 0 ? kept[0].id : this.#nextId, n - size);
    if (older === null) return kept.map((k) => k.line);
    if (!full) {
      // Keep what fits in memory, so that the next replay reads no disk.
      const log = this.#newLog(room);
      for (const { id, line } of older.slice(-(this.#cacheLines - size)).concat(kept)) {
        log.appendText(line.from, line.kind, line.time, line.text, id);
      }
      const before = cache.log.footprint;
      cache.log = log;
      cache.complete = older.length < n - size;
      this.#cached(cache, before);
    }
    return [...older, ...kept].map((k) => k.line);
  }

  topics(): StoredTopic[] {
    return [...this.#topics.values()];
  }

  /** Keeps the history of rooms people are in, past MAX_HISTORY_ROOMS too (the writer's). */
  occupied(room: RoomName, occupied: boolean): void {
    const key = room.toLowerCase();
    if (occupied) this.#occupied.add(key);
    else this.#occupied.delete(key);
    // A writer started later is told them all at open.
    if (this.#worker !== null) this.#post({ type: "occupied", room: key, occupied });
  }

  setTopic(topic: StoredTopic): void {
    if (this.#closing !== null) return;
    const key = topic.room.toLowerCase();
    setNewest(this.#topics, key, topic, MAX_TOPICS);
    this.#topicWrites.set(key, topic);
    this.#changed();
  }

  bans(): Ban[] {
    const now = Date.now();
    return [...this.#bans.values()].filter((ban) => ban.until === null || ban.until > now);
  }

  addBan(ban: Ban): void {
    if (this.#closing !== null) return;
    const key = ban.mask.toLowerCase();
    this.#bans.set(key, ban);
    this.#banWrites.set(key, { mask: ban.mask, ban });
    this.#changed();
  }

  removeBan(mask: string): boolean {
    const key = mask.toLowerCase();
    const had = this.#bans.delete(key);
    if (this.#closing === null) {
      // Written even when not in memory: the file may hold it expired.
      this.#banWrites.set(key, { mask, ban: null });
      this.#changed();
    }
    return had;
  }

  /**
   * Settles when everything appended or changed before the call is written,
   * or when a write failed (and was reported): `failed` comes first.
   */
  flush(): Promise<void> {
    if (this.#closed || this.#failing || this.#isWritten(this.#nextId - 1, this.#ops)) {
      return Promise.resolve();
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ line: this.#nextId - 1, ops: this.#ops, resolve });
    this.#schedule();
    return promise;
  }

  /**
   * Writes what is left (one last try, if writes were failing), stops the
   * writer and releases the file. Lines that could not be written are
   * reported in a `failed` event. Appends and changes after the call are
   * ignored; `recent()` answers from memory. Safe to call again: it returns
   * the same promise.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  /** Closes; see {@linkcode SqliteStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- Writing ---------------------------------------------------------------

  /** Starts the writer thread; resolves with its open error, if any. */
  #startWriter(): Promise<string | undefined> {
    WRITER_URL ??= writerUrl();
    const worker = new Worker(WRITER_URL, { type: "module" });
    this.#worker = worker;
    worker.onmessage = (event: MessageEvent<WriterReply>) => this.#onReply(event.data);
    worker.onerror = (event) => {
      // A bug in the writer, not a SQLite error (those are answers): report it
      // as a failed write; the retry starts a new writer.
      event.preventDefault();
      worker.terminate();
      if (this.#worker === worker) this.#worker = null;
      const message = `the writer thread stopped: ${event.message}`;
      this.#opened?.(message);
      if (this.#flight !== null) this.#onReply({ type: "written", ok: false, code: null, message });
    };
    const { promise, resolve } = Promise.withResolvers<string | undefined>();
    this.#opened = resolve;
    this.#post({
      type: "open",
      path: this.#path,
      keep: this.#keep,
      pruneMs: this.#pruneMs,
      maxBytes: this.#maxBytes,
      maxTopics: MAX_TOPICS,
      maxRooms: MAX_HISTORY_ROOMS,
      occupied: [...this.#occupied],
    });
    return promise;
  }

  /** Posts to the writer; what is in `transfer` moves to it rather than being copied. */
  #post(request: WriterRequest, transfer: Transferable[] = []): void {
    this.#worker!.postMessage(request, transfer);
  }

  /** Lines were queued: starts the window, drops the oldest past `maxPending`, schedules. */
  #appended(): void {
    this.#pendingSince ??= performance.now();
    if (this.#queue.lines > this.#maxPending) this.#dropOldest();
    this.#schedule();
  }

  /** A topic or ban changed: it goes with the next batch. */
  #changed(): void {
    this.#ops++;
    this.#pendingSince ??= performance.now();
    this.#schedule();
  }

  /**
   * Sends the next batch when it is due: at once if it is full, someone
   * flushes or the window has passed, else when the window ends. Nothing goes
   * while a batch is at the writer (its answer calls this again), while a
   * retry waits (its timer sends), or once close() drives the writes itself.
   */
  #schedule(): void {
    if (this.#flight !== null || this.#retryTimer !== undefined || this.#closing !== null) return;
    if (this.#pendingSince === null) return;
    if (this.#queue.lines >= this.#batchLines || this.#waiters.length > 0) {
      this.#send();
      return;
    }
    if (this.#windowTimer !== undefined) return;
    const wait = this.#pendingSince + this.#commitMs - performance.now();
    if (wait <= 0) this.#send();
    else {
      this.#windowTimer = setTimeout(() => {
        this.#windowTimer = undefined;
        this.#send();
      }, wait);
    }
  }

  /** Sends up to `batchLines` of the oldest lines and every pending change, as one commit. */
  #send(): void {
    clearTimeout(this.#windowTimer);
    this.#windowTimer = undefined;
    if (this.#flight !== null || this.#pendingSince === null) return;
    if (this.#worker === null) {
      void this.#startWriter();
    }
    const n = Math.min(this.#queue.lines, this.#batchLines);
    const since = this.#queue.oldestSince ?? this.#pendingSince;
    const lines = this.#queue.take(n, this.#spare);
    this.#spare = null;
    const last = lines.runs.at(-1);
    const flight: Flight = {
      lines: n,
      last: last === undefined ? NaN : last[0] + last[5] - 1,
      topics: [...this.#topicWrites.values()],
      bans: [...this.#banWrites.values()],
      since,
      ops: this.#ops,
    };
    this.#topicWrites = new Map();
    this.#banWrites = new Map();
    // Lines left behind (a backlog) keep the window's start: the next batch
    // goes as soon as this one is answered.
    if (this.#queue.lines === 0) this.#pendingSince = null;
    this.#flight = flight;
    this.#landed = Promise.withResolvers<boolean>();
    // The bytes move to the writer rather than being copied again.
    this.#post(
      { type: "write", lines, topics: flight.topics, bans: flight.bans },
      [lines.bytes.buffer],
    );
  }

  #onReply(reply: WriterReply): void {
    switch (reply.type) {
      case "opened":
        this.#opened?.(reply.error);
        this.#opened = null;
        break;
      case "pruned":
        this.#onEvent({ type: "pruned", lines: reply.lines });
        break;
      case "written": {
        const flight = this.#flight;
        if (reply.buffer !== undefined) this.#spare = reply.buffer;
        if (flight === null) break;
        // This batch's promise, taken before #written() may send the next
        // batch (which gets a promise of its own): resolving that one instead
        // would tell close() a batch landed while it is still at the writer.
        const landed = this.#landed;
        this.#flight = null;
        this.#landed = null;
        if (reply.ok) this.#written(flight);
        else this.#fail(flight, reply.code, reply.message);
        landed?.resolve(reply.ok);
        break;
      }
      case "closed":
        break;
    }
  }

  #written(flight: Flight): void {
    // A batch of topic or ban changes only has no line: the mark stays.
    this.#queue.written();
    if (flight.lines > 0) this.#writtenLine = Math.max(this.#writtenLine, flight.last);
    this.#writtenOps = flight.ops;
    if (this.#failing || (this.#behind && this.#queue.lines <= this.#maxPending / 2)) {
      this.#failing = this.#behind = false;
      this.#retryMs = RETRY_FIRST_MS;
      this.#onEvent({ type: "recovered", dropped: this.#dropped });
      this.#dropped = 0;
    }
    if (flight.lines > 0) {
      this.#onEvent({
        type: "stored",
        lines: flight.lines,
        ms: performance.now() - flight.since,
      });
    }
    this.#settleWaiters(false);
    this.#schedule();
  }

  /**
   * A write failed (`flight`: the batch, put back in front) or the writer
   * could not open (`flight` null): report once, keep the lines, retry later.
   * `code` and `reason` are SQLite's.
   */
  #fail(flight: Flight | null, code: number | null, reason: string): void {
    if (flight !== null) {
      this.#queue.rewind();
      this.#pendingSince = flight.since;
      // Changes made since the batch left are newer: they win.
      for (const topic of flight.topics) {
        const key = topic.room.toLowerCase();
        if (!this.#topicWrites.has(key)) this.#topicWrites.set(key, topic);
      }
      for (const write of flight.bans) {
        const key = write.mask.toLowerCase();
        if (!this.#banWrites.has(key)) this.#banWrites.set(key, write);
      }
    }
    this.#failure = reason;
    if (!this.#failing) {
      this.#failing = true;
      // A failure while behind was reported as such; this one says why.
      this.#onEvent({ type: "failed", message: describeWriteFailure(this.#path, code, reason) });
    }
    this.#dropOldest();
    this.#settleWaiters(true);
    if (this.#closing !== null) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#send();
    }, this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
  }

  /**
   * Drops the oldest unsent lines down to `maxPending`. It runs when the
   * queue is a tenth over, so that at the limit an append costs no copy.
   */
  #dropOldest(): void {
    const queued = this.#queue.lines;
    if (queued <= this.#maxPending + Math.floor(this.#maxPending / 10)) return;
    this.#dropped += this.#queue.drop(queued - this.#maxPending);
    if (!this.#failing && !this.#behind) {
      this.#behind = true;
      this.#onEvent({
        type: "failed",
        message: `Cannot write to the database "${this.#path}" as fast as lines come: ` +
          `more than ${this.#maxPending} wait, and the oldest are dropped. The chat goes on`,
      });
    }
  }

  #isWritten(line: number, ops: number): boolean {
    return this.#writtenLine >= line && this.#writtenOps >= ops;
  }

  /** Resolves the flushes that are written, or all of them (`all`) after a failure. */
  #settleWaiters(all: boolean): void {
    let kept = 0;
    for (const waiter of this.#waiters) {
      if (all || this.#isWritten(waiter.line, waiter.ops)) waiter.resolve();
      else this.#waiters[kept++] = waiter;
    }
    this.#waiters.length = kept;
  }

  async #close(): Promise<void> {
    clearTimeout(this.#windowTimer);
    clearTimeout(this.#retryTimer);
    this.#windowTimer = this.#retryTimer = undefined;
    // Drive the last writes here, one batch after the other, even if writes
    // were failing (one last try); stop at the first that fails.
    if (this.#flight !== null) await this.#landed!.promise;
    while (this.#pendingSince !== null) {
      this.#send();
      if (this.#landed === null || !await this.#landed.promise) break;
    }
    const unwritten = this.#queue.lines + this.#dropped;
    if (this.#worker !== null) {
      const worker = this.#worker;
      this.#worker = null;
      const { promise, resolve } = Promise.withResolvers<void>();
      worker.onmessage = (event: MessageEvent<WriterReply>) => {
        // A prune that ran after the last commit is still reported.
        if (event.data.type === "pruned") this.#onReply(event.data);
        else if (event.data.type === "closed") resolve();
      };
      worker.onerror = (event) => {
        event.preventDefault();
        resolve();
      };
      worker.postMessage({ type: "close" } satisfies WriterRequest);
      await promise;
      worker.terminate();
    }
    this.#closed = true;
    this.#lock.close();
    if (unwritten > 0) {
      this.#onEvent({
        type: "failed",
        message: `Closed the database "${this.#path}" with ${unwritten} lines not written: ` +
          this.#failure,
      });
    }
    this.#settleWaiters(true);
  }

  // --- Reading ---------------------------------------------------------------

  /** The room's cache, made (empty, not known complete) if it has none. */
  #cache(room: RoomName): RoomCache {
    // A room's lines come in runs, under one spelling: no key to make for those.
    if (room === this.#lastRoom) return this.#lastCache!;
    const key = room.toLowerCase();
    let cache = this.#rooms.get(key);
    if (cache === undefined) {
      cache = { log: this.#newLog(room), complete: false };
      this.#cacheBytes += cache.log.footprint;
    } else this.#rooms.delete(key); // to the end: the most recently used
    this.#rooms.set(key, cache);
    this.#lastRoom = room;
    this.#lastCache = cache;
    return cache;
  }

  /**
   * Counts what `cache`'s log grew by since it was `before` bytes, and when
   * the caches are over `cacheBytes`, drops those of the rooms used least
   * recently (not this one) down to a sixteenth under it. A dropped room's
   * next replay reads the file, and the lines not yet written: nothing is
   * lost, only memory.
   */
  #cached(cache: RoomCache, before: number): void {
    this.#cacheBytes += cache.log.footprint - before;
    if (this.#cacheBytes <= this.#maxCacheBytes) return;
    // Down to a sixteenth under, in one pass: see MemoryStore's #grew.
    const target = this.#maxCacheBytes - (this.#maxCacheBytes >> 4);
    for (const [key, other] of this.#rooms) {
      if (this.#cacheBytes <= target) break;
      if (other === cache) continue;
      this.#rooms.delete(key);
      this.#cacheBytes -= other.log.footprint;
      if (other === this.#lastCache) {
        this.#lastRoom = null;
        this.#lastCache = null;
      }
    }
  }

  /** An empty log of a room's recent lines. */
  #newLog(room: RoomName): LineLog {
    // No byte bound: `cacheLines` lines of at most --max-line bytes.
    return new LineLog(room, { keep: this.#cacheLines, maxBytes: Infinity });
  }

  /**
   * Up to `count` lines of `room` older than line `before`, oldest first: from
   * the file (lines from before this run, or that left memory), and from
   * lines not written yet (a burst larger than memory keeps). Null if the file
   * could not be read.
   */
  #older(room: RoomName, before: number, count: number): Entry[] | null {
    const lines = this.#read((db) => {
      const newestFirst: Entry[][] = [];
      let found = 0;
      const rows = db.prepare(
        "SELECT id, room, time, name, kind, text FROM runs WHERE room = ? AND id < ? " +
          "ORDER BY id DESC",
      ).iterate(room, before) as Iterable<RunRow>;
      // Newest rows first, until `count` lines are found.
      for (const row of rows) {
        const text = typeof row.text === "string" ? row.text : decoder.decode(row.text);
        const kept = runEntries({ ...row, kind: row.kind as LineKind }, text)
          .filter((k) => k.id < before).slice(-(count - found));
        newestFirst.push(kept);
        found += kept.length;
        if (found >= count) break;
      }
      return newestFirst.reverse().flat();
    });
    if (lines === null) return null;
    const found = new Map<number, HistoryLine>();
    for (const { id, line } of lines) found.set(id, line);
    const key = room.toLowerCase();
    for (const { id, line } of this.#queue.entries(key, before)) found.set(id, line);
    const ids = [...found.keys()].sort((a, b) => a - b).slice(-count);
    return ids.map((id) => ({ id, line: found.get(id)! }));
  }

  /**
   * Runs `query` on a connection of its own, opened read-only and closed
   * after: the main thread holds no connection between reads, so a writer
   * that reopens after a failure is never tied to the state of an old one.
   * A failed read is reported once and answers null (the lines in memory only).
   */
  #read<T>(query: (db: DatabaseSync) => T): T | null {
    if (this.#closed) return null;
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(this.#path, { readOnly: true, timeout: OPEN_TIMEOUT_MS });
      const result = query(db);
      this.#readFailing = false;
      return result;
    } catch (e) {
      if (!this.#readFailing) {
        this.#readFailing = true;
        this.#onEvent({
          type: "failed",
          message: `Cannot read history from the database "${this.#path}": ` +
            `${e instanceof Error ? e.message : String(e)}; showing the lines in memory only`,
        });
      }
      return null;
    } finally {
      db?.close();
    }
  }
}

/** Throws a RangeError for an option out of range. */
function checkOptions(options: SqliteStoreOptions): void {
  const check = (name: keyof SqliteStoreOptions, min: number) => {
    const value = options[name];
    if (value === undefined || value === null) return;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
      throw new RangeError(`SqliteStore option "${name}" must be an integer >= ${min}`);
    }
  };
  check("keep", 0);
  check("commitMs", 0);
  check("batchLines", 1);
  check("cacheLines", 0);
  check("cacheBytes", 0);
  check("maxPending", 1);
  check("pruneMs", 0);
  check("maxBytes", 1);
}

/**
 * Opens `path` for an exclusive flock (creating an empty file, which SQLite
 * takes for an empty database); throws a StoreError when it cannot.
 */
function lockFile(path: string): Deno.FsFile {
  let file: Deno.FsFile;
  try {
    try {
      file = Deno.openSync(path, { read: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      file = Deno.openSync(path, { read: true, write: true, createNew: true });
    }
  } catch (e) {
    throw openError(path, e);
  }
  if (!file.tryLockSync(true)) {
    file.close();
    throw new StoreError(
      `Cannot open the database "${path}": another charla is using it; ` +
        `stop that one or pass another --db`,
    );
  }
  return file;
}

/**
 * Checks and migrates the schema and reads what the store keeps in memory,
 * with a connection that is closed before the writer opens its own.
 */
function prepare(path: string): { nextId: number; topics: StoredTopic[]; bans: Ban[] } {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { timeout: OPEN_TIMEOUT_MS });
    const number = (sql: string) => Object.values(db!.prepare(sql).get()!)[0] as number;
    // The first read of the file: a file that is not a database fails here.
    const appId = number("PRAGMA application_id");
    const version = number("PRAGMA user_version");
    const objects = number("SELECT count(*) FROM sqlite_schema");
    if (appId !== APPLICATION_ID && (appId !== 0 || objects > 0)) {
      throw new StoreError(
        `Cannot open the database "${path}": it is not a charla database ` +
          `(it belongs to another program); pass another --db`,
      );
    }
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `Cannot open the database "${path}": its schema is version ${version} and this ` +
          `charla knows versions up to ${SCHEMA_VERSION}; run a newer charla or pass another --db`,
      );
    }
    if (version < SCHEMA_VERSION) {
      // A new file's pages are 8 KiB rather than 4: a run of a few hundred lines
      // spans half as many overflow pages, each a WAL frame to write (measured
      // here: rows of 800 lines written in 27 ms instead of 49, one-line
      // commits 34 µs instead of 31). Set before WAL, which fixes the page size.
      if (version === 0 && objects === 0) db.exec(`PRAGMA page_size = ${PAGE_SIZE}`);
      // WAL is a property of the file: set once, before the first transaction.
      db.exec("PRAGMA journal_mode = WAL");
      db.prepare("BEGIN IMMEDIATE").run();
      try {
        for (let v = version; v < SCHEMA_VERSION; v++) MIGRATIONS[v](db);
        db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
        db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
        db.prepare("COMMIT").run();
      } catch (e) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw e;
      }
    }
    const last = db.prepare("SELECT id + count AS next FROM runs ORDER BY id DESC LIMIT 1")
      .get() as { next: number } | undefined;
    // The newest MAX_TOPICS, oldest first (the writer prunes the rest).
    const topics = (db.prepare(
      "SELECT room, topic, by, time FROM topics ORDER BY time DESC LIMIT ?",
    ).all(MAX_TOPICS) as unknown as StoredTopic[])
      .map((t) => ({ room: t.room, topic: t.topic, by: t.by, time: t.time })).reverse();
    const bans = (db.prepare(
      "SELECT mask, kind, reason, since, until FROM bans WHERE until IS NULL OR until > ?",
    ).all(Date.now()) as unknown as Ban[]).map((b) => ({
      mask: b.mask,
      kind: b.kind,
      reason: b.reason,
      since: b.since,
      until: b.until,
    }));
    return { nextId: last?.next ?? 1, topics, bans };
  } catch (e) {
    throw e instanceof StoreError ? e : openError(path, e);
  } finally {
    db?.close();
  }
}

/** A StoreError for a file that could not be opened: what went wrong and what to do. */
function openError(path: string, e: unknown): StoreError {
  const start = `Cannot open the database "${path}"`;
  const options = { cause: e };
  if (e instanceof Deno.errors.NotCapable) {
    return new StoreError(
      `${start}: no permission to use it; run with --allow-read and --allow-write ` +
        `for the file or its directory`,
      options,
    );
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return new StoreError(
      `${start}: permission denied; make the file and its directory readable and writable, ` +
        `or pass another --db`,
      options,
    );
  }
  if (e instanceof Deno.errors.NotFound) {
    return new StoreError(
      `${start}: its directory does not exist; create it or pass another --db`,
      options,
    );
  }
  const message = e instanceof Error ? e.message : String(e);
  const errcode = (e as { errcode?: unknown }).errcode;
  const code = typeof errcode === "number" ? errcode & 0xff : codeOf(message);
  switch (code) {
    case SQLITE_NOTADB:
      return new StoreError(
        `${start}: file is not a database; move it aside or pass another --db`,
        options,
      );
    case SQLITE_CORRUPT:
      return new StoreError(
        `${start}: the file is corrupt (${message}); restore it from a backup, ` +
          `or move it aside and pass another --db`,
        options,
      );
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return new StoreError(
        `${start}: another program holds a lock on it; close that program or pass another --db`,
        options,
      );
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return new StoreError(
        `${start}: it cannot be written (${message}); make the file and its directory ` +
          `writable, or pass another --db`,
        options,
      );
    case SQLITE_CANTOPEN:
      return new StoreError(
        `${start}: SQLite cannot open it (${message}); check that the file and its ` +
          `directory exist and are writable, or pass another --db`,
        options,
      );
    default:
      return new StoreError(`${start}: ${message}; pass another --db`, options);
  }
}

/**
 * SQLite's primary result code from its message, for errors node:sqlite
 * throws without `errcode` (those of `exec()`).
 */
function codeOf(message: string): number | null {
  if (message.startsWith("file is not a database")) return SQLITE_NOTADB;
  if (message.startsWith("database disk image is malformed")) return SQLITE_CORRUPT;
  if (message.startsWith("database is locked")) return SQLITE_BUSY;
  if (message.startsWith("attempt to write a readonly database")) return SQLITE_READONLY;
  if (message.startsWith("database or disk is full")) return SQLITE_FULL;
  if (message.startsWith("unable to open database file")) return SQLITE_CANTOPEN;
  if (message.startsWith("disk I/O error")) return SQLITE_IOERR;
  return null;
}

/** The `failed` message for a write that failed: what, what to do, and that the chat goes on. */
function describeWriteFailure(path: string, code: number | null, message: string): string {
  let advice: string;
  switch (code ?? codeOf(message)) {
    case SQLITE_FULL:
      advice = "free some disk space";
      break;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
      advice = "make the file, its -wal and -shm files and its directory writable";
      break;
    case SQLITE_IOERR:
      advice = "check the disk";
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      advice = "another program holds a lock on it";
      break;
    default:
      advice = "check the file";
  }
  return `Cannot write to the database "${path}": ${message}; ${advice}. ` +
    `The chat goes on; unwritten lines are kept in memory and written when it works again`;
}
