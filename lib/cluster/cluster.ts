/**
 * A cluster of charla nodes sharing rooms through Redis: the {@linkcode Bus}
 * the core talks to, the ids and name claims its directory asks for, and the
 * {@linkcode RedisStore} its history lives in.
 *
 * How lines travel. A room's lines go into the room's Redis stream (one entry
 * per batch, numbered by lines: see entries.ts), and every node with someone
 * in the room reads the stream from where it last stopped, with XREAD on a
 * connection of its own. So order is the stream's, nothing is lost while Redis
 * is up, a node that stalls resumes where it was (Redis never cuts it, as it
 * cuts a pub/sub subscriber that falls behind), and the only loss, a stream
 * trimmed past a node taken for dead or more than four times `historyKeep`
 * lines behind, is counted exactly and told to the people it concerns.
 *
 * Who is where goes through `charla:events`, which every node reads, and
 * `charla:people`, which a node reads whole when it starts or comes back.
 * Joins are also written to the room's stream, so they are shown before the
 * joiner's first line; leaves are shown after a round's lines (see
 * {@linkcode Cluster} `#process`).
 *
 * A node that reads a room too slowly. Each node reports how far it has read
 * each room (`charla:reading:<node>`); a node whose people talk in a room
 * asks now and then how far the slowest node is behind, and past half of
 * `historyKeep` lines it holds its senders there, exactly as a member here who
 * falls behind does, until the slowest is back within a quarter. Streams are
 * never trimmed past what a registered node reported reading (scripts.ts,
 * APPEND), up to four times `historyKeep`: what senders say before the hold
 * takes (a read of each, commands in flight) is never lost. A node that stops
 * reading holds the room for at most twice the node timeout (it is taken for
 * dead before that when it stopped entirely); past that, and past four times
 * `historyKeep`, its loss is counted as above.
 *
 * Faults. Each node refreshes a liveness key (`nodeTimeout`, 3 s by default);
 * when one expires, the first node to notice removes that node's people and
 * frees their names, in one script, and every node tells its people they left
 * (`connection lost`). When Redis cannot be reached, a node goes on serving
 * its own people, tells them the cluster is degraded, counts the lines it could
 * not share, reconnects with backoff and then registers everyone again, reads
 * the cluster's state afresh and reports those counts.
 *
 * @module
 */

import type { Bus, BusMessage } from "../core/bus.ts";
import type { ChatCore } from "../core/chat.ts";
import type { Entry, IdSource, NameClaims } from "../core/directory.ts";
import type { RoomName } from "../core/messages.ts";
import { nameKey, roomKey } from "../core/names.ts";
import { SaidBatch } from "../core/peer.ts";
import type { Room } from "../core/room.ts";
import type { Session } from "../core/session.ts";
import { MAX_HISTORY_ROOMS } from "../store/store.ts";
import {
  type ClusterEvent,
  ClusterKeys,
  countLines,
  encodeJson,
  fillBatch,
  type InboxMessage,
  isId,
  isWord,
  joinBatch,
  lineOf,
  linesHeader,
  missedBefore,
  parseJson,
  parseLinesHeader,
  parsePerson,
  type PersonRecord,
  text,
} from "./entries.ts";
import {
  parseRedisUrl,
  redactUrl,
  RedisClient,
  type RedisClientOptions,
  RedisConnectionError,
  type RedisEvent,
} from "./redis.ts";
import { RedisStore } from "./redis_store.ts";
import { type Arg, RedisError, type Reply } from "./resp.ts";
import { SCRIPTS } from "./scripts.ts";

/** Options for {@linkcode Cluster.connect}. */
export interface ClusterOptions {
  /**
   * This node's name, unique in the cluster while it runs: letters, digits and
   * `_ . : -`, up to 64.
   * @default {"<hostname>:<pid>"} (`node:<pid>` without `--allow-sys=hostname`)
   */
  node?: string;
  /** The ACL user; overrides the URL's. */
  username?: string;
  /** The password; overrides the URL's. */
  password?: string;
  /** PEM certificates of the authorities to trust for `rediss://`. */
  caCerts?: string[];
  /**
   * Lines each room's stream keeps: the history, and how far a node may fall
   * behind before it misses lines.
   * @default {10000}
   */
  historyKeep?: number;
  /**
   * Lines of each room this node keeps in memory, for joiners and `/history`.
   * @default {1000}
   */
  historyCached?: number;
  /**
   * Milliseconds a node may go without refreshing its liveness key before the
   * others take it for dead and its people for gone.
   * @default {3000}
   */
  nodeTimeout?: number;
  /** Ids taken from Redis at a time. @default {1000} */
  idBlock?: number;
  /** The keys (their prefix). @default the `charla:` keys */
  keys?: ClusterKeys;
  /** Longest wait between reconnection attempts to Redis, in ms. @default {2000} */
  maxReconnectDelay?: number;
}

/** The cluster cannot be joined: the message says why and what to do. */
export class ClusterError extends Error {
  /** `message` is a sentence for the user. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClusterError";
  }
}

/**
 * Entries asked of each stream per read: enough to batch, few enough that one
 * read's fan-out (an entry is a batch, up to about a thousand lines) does not
 * hold the event loop for long, and that slow members here are noticed soon.
 */
const READ_COUNT = 100;
/** How long a read waits for something new before it is sent again. */
const BLOCK_MS = 10_000;
/** Entries `charla:events` keeps (roughly): what a node that stalls may fall behind by. */
const EVENTS_KEEP = 100_000;
/** Entries each inbox keeps (roughly). */
const INBOX_KEEP = 10_000;
/**
 * Rounds in a row that events may wait for rooms whose reads came back full:
 * leaves are shown after the lines before them, but not at any price.
 */
const DEFER_LIMIT = 8;
const NODE_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
/** Where ids are made up from when Redis cannot hand out a block: far above any block. */
const FALLBACK_IDS = 1e12;

/** What a node follows of one room: the stream, read up to where. */
interface Follow {
  /** The room's name as first seen here. */
  readonly room: RoomName;
  /** Its stream's key. */
  readonly stream: string;
  /** The id of the last entry read; null until the stream could be read once. */
  cursor: string | null;
  /** The line count at the cursor: what a gap is measured from. */
  lastLine: number;
  // Flow control (see Cluster: "A node that reads a room too slowly").
  /** The highest line count known here: read, or given back by this node's appends. */
  top: number;
  /** Lines this node sent to the stream that Redis has not acknowledged yet. */
  pending: number;
  /** The line count last written to this node's `reading` hash; -1: none yet. */
  reported: number;
  /** When (`performance.now()`). */
  reportedAt: number;
  /** The slowest node's line count, as last asked. */
  slowest: number;
  /** A SLOWEST query is in flight. */
  checking: boolean;
  /** The room held (its senders here wait) while a node reads too far behind. */
  held: Room | null;
  heldSince: number;
  /** Polls the slowest node while held. */
  timer: ReturnType<typeof setTimeout> | undefined;
  /** No holding before this time: after a hold that lasted too long. */
  calmUntil: number;
  /** When the operator was last told of a hold (at most every 10 s). */
  toldAt: number;
}

/** The cluster's state as read in one transaction. */
interface Snapshot {
  /** The newest entry of `charla:events` at the time: read on from there. */
  eventsCursor: string;
  /** The newest entry of this node's inbox: older ones are not for this run. */
  inboxCursor: string;
  people: PersonRecord[];
  nodes: Set<string>;
}

/**
 * A node of a cluster, connected to Redis.
 *
 * @example
 * ```ts ignore
 * const cluster = await Cluster.connect("redis://127.0.0.1:6379", { node: "a" });
 * const server = new ChatServer(listener, {
 *   relay: true,
 *   bus: cluster, ids: cluster.ids, claims: cluster.claims, store: cluster.store,
 * });
 * ```
 */
export class Cluster implements Bus {
  /** This node's name. */
  readonly node: string;
  /** Where Redis is, its password hidden. */
  readonly where: string;
  /** History, topics and bans, in Redis. */
  readonly store: RedisStore;
  /** Ids unique in the cluster, taken from Redis in blocks. */
  readonly ids: IdSource;
  /** Names unique in the cluster. */
  readonly claims: NameClaims;
  readonly #commands: RedisClient;
  /** A connection of its own for the blocking reads: they would hold up every command. */
  readonly #reader: RedisClient;
  readonly #keys: ClusterKeys;
  readonly #keep: number;
  readonly #timeout: number;
  /** Flow control: hold a room's senders past this lag (lines), release under `#low`. */
  readonly #high: number;
  readonly #low: number;
  /** Report how far this node read a room every this many lines (and every 100 ms). */
  readonly #reportEvery: number;
  readonly #blockIds: BlockIds;
  /** This run of the node, in its liveness key: tells a restart under the same name apart. */
  readonly #incarnation = crypto.randomUUID();
  readonly #inbox: string;
  #core: ChatCore | null = null;
  /**
   * `up`: reading and writing. `syncing`: writing again, registering and
   * reading the cluster afresh. `down`: Redis is out of reach.
   */
  #state: "up" | "syncing" | "down" | "closed" = "syncing";
  /** Why the cluster is degraded, while it is. */
  #problem: string | null = null;
  /** Whether the people here were told that it is. */
  #told = false;
  #epoch = "";
  /** Script SHA1s by name. */
  #sha = Object.fromEntries(Object.keys(SCRIPTS).map((name) => [name, ""])) as Record<
    keyof typeof SCRIPTS,
    string
  >;
  /** Bumped when cursors are reset: a read sent before must not move them. */
  #generation = 0;
  readonly #follows = new Map<string, Follow>();
  readonly #byStream = new Map<string, Follow>();
  #eventsCursor = "0-0";
  #inboxCursor = "0-0";
  /** Events rounds skipped in a row (see {@linkcode DEFER_LIMIT}). */
  #deferred = 0;
  /** Lines said here that could not be written, by room key: reported when Redis is back. */
  readonly #unshared = new Map<string, { room: RoomName; count: number }>();
  /** The state read at connection, applied when the core attaches. */
  #snapshot: Snapshot | null = null;
  /** Nodes whose people are known here but which are not registered, since when. */
  readonly #missing = new Map<string, number>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #reading: Promise<void> = Promise.resolve();
  /** True while the reader waits in a blocking read: new rooms need a wake-up then. */
  #blocked = false;
  #waiters: (() => void)[] = [];
  #resyncing: Promise<void> | null = null;
  #resyncWanted = false;
  #joined = "";
  /** Name keys being claimed by someone here right now. */
  readonly #claiming = new Set<string>();
  /** One batch for every remote line: filled and relayed without an await between. */
  readonly #batch = new SaidBatch();

  private constructor(
    node: string,
    where: string,
    commands: RedisClient,
    reader: RedisClient,
    options: ClusterOptions,
  ) {
    this.node = node;
    this.where = where;
    this.#commands = commands;
    this.#reader = reader;
    this.#keys = options.keys ?? new ClusterKeys();
    this.#keep = options.historyKeep ?? 10_000;
    this.#timeout = options.nodeTimeout ?? 3000;
    this.#high = Math.max(2, Math.floor(this.#keep / 2));
    this.#low = Math.max(1, Math.floor(this.#keep / 4));
    this.#reportEvery = Math.max(1, Math.floor(this.#keep / 20));
    this.#inbox = this.#keys.inbox(node);
    this.store = new RedisStore(commands, {
      keys: this.#keys,
      cached: Math.min(this.#keep, options.historyCached ?? 1000),
      where: `redis ${where}`,
    });
    const block = options.idBlock ?? 1000;
    this.#blockIds = new BlockIds(
      block,
      () => this.#commands.integer("INCRBY", this.#keys.ids, block),
    );
    this.ids = this.#blockIds;
    this.claims = {
      claim: (key, holder) => this.#claim(key, holder),
      release: (key, holder) => this.#release(key, holder),
    };
  }

  /**
   * Joins the cluster whose state is in the Redis at `url`: connects (twice:
   * commands, and blocking reads), registers this node, takes a first block of
   * ids and reads who is where. Rejects with a {@linkcode ClusterError} saying
   * what to do when Redis cannot be reached or refuses, or the node name is in
   * use; later outages never reject anything, they degrade the cluster.
   */
  static async connect(url: string, options: ClusterOptions = {}): Promise<Cluster> {
    let target;
    try {
      target = parseRedisUrl(url);
    } catch (error) {
      throw new ClusterError((error as Error).message, { cause: error });
    }
    const where = `${target.tls ? "rediss" : "redis"}://${
      target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname
    }:${target.port}`;
    const node = options.node ?? defaultNodeName();
    if (!NODE_NAME.test(node)) {
      throw new ClusterError(
        `Invalid node name "${node}": use 1 to 64 letters, digits, "_", ".", ":" or "-"`,
      );
    }
    for (
      const [name, value] of [["historyKeep", options.historyKeep], [
        "nodeTimeout",
        options.nodeTimeout,
      ]] as const
    ) {
      if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
        throw new RangeError(`Invalid ${name} "${value}": must be a positive whole number`);
      }
    }
    let self: Cluster | undefined;
    const common: RedisClientOptions = {
      username: options.username,
      password: options.password,
      caCerts: options.caCerts,
      connectTimeout: 5000,
      reconnectDelay: 50,
      maxReconnectDelay: options.maxReconnectDelay ?? 2000,
    };
    let commands: RedisClient | undefined;
    let reader: RedisClient | undefined;
    try {
      commands = await RedisClient.connect(url, {
        ...common,
        name: `charla-${node}`,
        onEvent: (event) => {
          if (self !== undefined) self.#onCommandsEvent(event);
        },
      });
      reader = await RedisClient.connect(url, {
        ...common,
        name: `charla-${node}-reader`,
        onEvent: () => {
          if (self !== undefined) self.#notify();
        },
      });
      self = new Cluster(node, where, commands, reader, options);
      await self.#join();
      return self;
    } catch (error) {
      await commands?.close();
      await reader?.close();
      if (error instanceof ClusterError) throw error;
      throw new ClusterError(
        `Cannot join the cluster at ${redactUrl(url)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /** The first registration: scripts, liveness, epoch, ids, the cluster's state. */
  async #join(): Promise<void> {
    await this.#loadScripts();
    const c = this.#commands;
    const alive = this.#keys.alive(this.node);
    const taken = await c.command("SET", alive, this.#incarnation, "NX", "PX", this.#timeout);
    if (taken === null) {
      throw new ClusterError(
        `The node name "${this.node}" is in use by a node that is running; ` +
          "give this one another name with --node",
      );
    }
    this.#epoch = await this.#readEpoch();
    await this.#blockIds.fill();
    await c.command("SADD", this.#keys.nodes, this.node);
    this.#snapshot = await this.#takeSnapshot();
    this.#state = "up";
  }

  /** What joining found, for the operator: `node a joined the cluster at …: 2 nodes, …`. */
  get joined(): string {
    return this.#joined;
  }

  /** Why people on other nodes cannot be reached now; null while they can. */
  get degraded(): string | null {
    if (this.#state === "up" || this.#state === "syncing") return null;
    return `the cluster is degraded (${this.#problem ?? "closed"})`;
  }

  /** Starts serving `core`: what was read of the cluster goes in, then reading and the heartbeat begin. */
  attach(core: ChatCore): void {
    if (this.#core !== null) throw new Error("Cluster.attach() was called twice");
    this.#core = core;
    const snapshot = this.#snapshot;
    this.#snapshot = null;
    if (snapshot !== null) {
      this.#apply(snapshot, false);
      this.#joined = `node ${this.node} joined the cluster at ${this.where}: ` +
        `${plural(snapshot.nodes.size, "node")}, ${
          plural(core.remote.size, "person", "people")
        } on the others`;
    }
    this.#heartbeat = setInterval(() => this.#beat(), Math.max(100, Math.floor(this.#timeout / 3)));
    this.#reading = this.#readLoop();
  }

  // What happens here, out to the others.

  /** Lines said here: one stream entry per batch, written in the order they were said. */
  lines(room: Room, from: Session, batch: SaidBatch): void {
    if (!this.#writable) return this.#unshare(room.name, batch.count);
    const count = batch.count;
    const header = linesHeader(batch.kind, batch.time, from.id, this.node, from.name);
    const follow = this.#follows.get(roomKey(room.name));
    if (follow !== undefined) {
      follow.pending += count;
      // Decided here, not when Redis answers: many reads' lines may be on their way by then.
      if (follow.held === null && follow.top + follow.pending - follow.slowest > this.#high) {
        this.#hold(follow, room);
        this.#checkLag(follow);
      }
    }
    this.#append(room.name, count, ["h", header, "x", joinBatch(batch)]).then(
      (id) => this.#appended(follow, count, id),
      (error) => {
        if (follow !== undefined) follow.pending -= count;
        this.#appendFailed(room.name, count, error);
      },
    );
  }

  publish(message: BusMessage): void {
    if (this.#state === "closed") return;
    const writable = this.#writable;
    switch (message.type) {
      case "connect":
        if (writable) {
          this.#record(message.who, {
            type: "person",
            node: this.node,
            person: this.#person(message.who),
          });
        }
        return;
      case "join": {
        const { room, who } = message;
        if (!this.#follows.has(roomKey(room.name))) this.#follow(room.name);
        if (!writable) return;
        const notice = encodeJson({
          type: "join",
          node: this.node,
          id: who.id,
          name: who.name,
          ...(message.from === undefined ? {} : { from: message.from }),
        });
        this.#append(room.name, 0, ["e", notice]).catch(ignore);
        this.#record(who, { type: "join", node: this.node, id: who.id, room: room.name });
        return;
      }
      case "part": {
        const { room, who } = message;
        if (room.members.size === 0) this.#unfollow(room.name);
        if (!writable) return;
        this.#record(who, {
          type: "part",
          node: this.node,
          id: who.id,
          room: room.name,
          ...(message.to === undefined ? {} : { to: message.to }),
          ...(message.reason === undefined ? {} : { reason: message.reason }),
        });
        return;
      }
      case "quit": {
        for (const room of message.rooms) if (room.members.size === 0) this.#unfollow(room.name);
        if (!writable) return;
        const event = encodeJson({
          type: "quit",
          node: this.node,
          id: message.who.id,
          reason: message.reason,
        });
        this.#transaction([
          ["HDEL", this.#keys.people, message.who.id],
          ["XADD", this.#keys.events, "MAXLEN", "~", EVENTS_KEEP, "*", "e", event],
        ]);
        return;
      }
      case "nick":
        if (writable) {
          this.#record(message.who, {
            type: "nick",
            node: this.node,
            id: message.who.id,
            name: message.who.name,
          });
        }
        return;
      case "away":
        if (writable) {
          this.#record(message.who, {
            type: "away",
            node: this.node,
            id: message.who.id,
            text: message.who.away,
          });
        }
        return;
      case "topic":
        if (writable) {
          this.#event({
            type: "topic",
            node: this.node,
            room: message.room.name,
            topic: message.topic,
            by: message.by,
            time: message.time,
          });
        }
        return;
      case "notice": {
        const { room, text, time } = message;
        if (!writable) return this.#unshare(room.name, 1);
        const header = linesHeader("notice", time, 1, this.node, "server");
        this.#append(room.name, 1, ["h", header, "x", text])
          .catch((error) => this.#appendFailed(room.name, 1, error));
        return;
      }
      case "broadcast":
        if (writable) this.#event({ type: "broadcast", node: this.node, text: message.text });
        return;
      case "private": {
        const { from, to, text, action, time } = message;
        if (!writable) return;
        this.#send(to.node, {
          type: "private",
          node: this.node,
          from: from === null ? null : { id: from.id, name: from.name },
          to: to.id,
          text,
          action,
          time,
          ...(message.notice ? { notice: true } : {}),
        });
        return;
      }
      case "kick":
        if (writable) {
          this.#send(message.target.node, {
            type: "kick",
            node: this.node,
            id: message.target.id,
            reason: message.reason,
          });
        }
        return;
    }
  }

  /**
   * Leaves the cluster: the sessions closed already (each told the others it
   * left), so what remains is this node's liveness key; then the connections close.
   */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    const wasUp = this.#writable;
    this.#state = "closed";
    clearInterval(this.#heartbeat);
    for (const follow of this.#follows.values()) this.#unhold(follow);
    this.#notify();
    if (wasUp) {
      const c = this.#commands;
      await Promise.allSettled([
        c.command("DEL", this.#keys.alive(this.node)),
        c.command("DEL", this.#keys.reading(this.node)),
        c.command("SREM", this.#keys.nodes, this.node),
      ]);
    }
    await this.#commands.close();
    await this.#reader.close();
    await this.#reading;
  }

  /** Read through a getter: TypeScript narrows a field compared before an await for good. */
  get #closed(): boolean {
    return this.#state === "closed";
  }

  get #writable(): boolean {
    return this.#state === "up" || this.#state === "syncing";
  }

  /** Appends an entry to a room's stream (see scripts.ts APPEND): `count` lines, or a notice. */
  #append(room: RoomName, count: number, fields: Arg[]): Promise<Reply> {
    return this.#eval(
      "APPEND",
      [this.#keys.room(room), this.#keys.lineCount(room)],
      [count, this.#keep, this.#keys.prefix, roomKey(room), MAX_HISTORY_ROOMS, ...fields],
    );
  }

  /** Lines were appended: if the room grew well past the slowest reader's last report, ask again. */
  #appended(follow: Follow | undefined, count: number, id: Reply): void {
    if (follow === undefined) return;
    follow.pending -= count;
    const last = lineOf(text(id));
    if (!Number.isNaN(last)) follow.top = Math.max(follow.top, last);
    if (follow.held === null && follow.top - follow.slowest > this.#high / 2) {
      this.#checkLag(follow);
    }
  }

  #appendFailed(room: RoomName, count: number, error: unknown): void {
    this.#unshare(room, count);
    if (error instanceof RedisError && error.code === "NOSCRIPT") this.#requestResync();
  }

  #unshare(room: RoomName, count: number): void {
    const key = roomKey(room);
    const unshared = this.#unshared.get(key);
    if (unshared === undefined) this.#unshared.set(key, { room, count });
    else unshared.count += count;
  }

  #eval(script: keyof typeof SCRIPTS, keys: Arg[], args: Arg[]): Promise<Reply> {
    return this.#commands.command("EVALSHA", this.#sha[script], keys.length, ...keys, ...args);
  }

  /** A person's record, as `charla:people` and events keep it. */
  #person(session: Session): PersonRecord {
    const chosen = session.name !== `user${session.id}`;
    return {
      id: session.id,
      name: session.name,
      node: this.node,
      transport: session.transport,
      since: session.connectedAt,
      away: session.away,
      rooms: session.rooms.map((room) => room.name),
      ...(chosen ? { key: nameKey(session.name) } : {}),
    };
  }

  /** Writes a person's record and an event about them, as one step. */
  #record(session: Session, event: ClusterEvent): void {
    this.#transaction([
      ["HSET", this.#keys.people, session.id, JSON.stringify(this.#person(session))],
      ["XADD", this.#keys.events, "MAXLEN", "~", EVENTS_KEEP, "*", "e", encodeJson(event)],
    ]);
  }

  #event(event: ClusterEvent): void {
    this.#commands.command(
      "XADD",
      this.#keys.events,
      "MAXLEN",
      "~",
      EVENTS_KEEP,
      "*",
      "e",
      encodeJson(event),
    )
      .catch(ignore);
  }

  #send(node: string, message: InboxMessage): void {
    this.#commands.command(
      "XADD",
      this.#keys.inbox(node),
      "MAXLEN",
      "~",
      INBOX_KEEP,
      "*",
      "e",
      encodeJson(message),
    )
      .catch(ignore);
  }

  /**
   * Commands in MULTI/EXEC, issued without an await between them, so nothing
   * else this node sends can fall inside.
   */
  #transaction(commands: Arg[][]): Promise<Reply> {
    const c = this.#commands;
    c.command("MULTI").catch(ignore);
    for (const args of commands) c.command(...args).catch(ignore);
    const exec = c.command("EXEC");
    exec.catch(ignore);
    return exec;
  }

  // Names and ids.

  #claim(key: string, holder: Entry): Promise<boolean> {
    if (this.#core?.remote.holds(key)) return Promise.resolve(false);
    // Two people here asking at once: the first asks Redis, the second is refused.
    // (The script lets this node take over a name it holds itself, because the
    // directory here has checked that nobody here holds it: true only for one.)
    if (this.#claiming.has(key)) return Promise.resolve(false);
    // Out of reach: granted here, and claimed again when Redis is back (see #register).
    if (!this.#writable) return Promise.resolve(true);
    this.#claiming.add(key);
    return this.#eval("CLAIM", [this.#keys.name(key)], [
      `${this.node} ${holder.id}`,
      this.node,
      this.#keys.alivePrefix,
    ]).then(
      (reply) => reply === 1,
      (error) => error instanceof RedisConnectionError,
    ).finally(() => this.#claiming.delete(key));
  }

  #release(key: string, holder: Entry): void {
    // Default names are never claimed: ids are unique already.
    if (!this.#writable || key === nameKey(`user${holder.id}`)) return;
    this.#eval("RELEASE", [this.#keys.name(key)], [`${this.node} ${holder.id}`]).catch(ignore);
  }

  // Following rooms: the streams of the rooms someone here is in.

  #follow(room: RoomName): void {
    const key = roomKey(room);
    const follow: Follow = {
      room,
      stream: this.#keys.room(room),
      cursor: null,
      lastLine: 0,
      top: 0,
      pending: 0,
      reported: -1,
      reportedAt: 0,
      slowest: 0,
      checking: false,
      held: null,
      heldSince: 0,
      timer: undefined,
      calmUntil: 0,
      toldAt: -Infinity,
    };
    this.#follows.set(key, follow);
    this.#byStream.set(follow.stream, follow);
    const generation = this.#generation;
    this.store.load(room).then(({ lastId }) => {
      if (this.#follows.get(key) !== follow || generation !== this.#generation) return;
      if (lastId === null) return; // Redis is down: the resync finds where the stream ends
      follow.cursor = lastId;
      follow.lastLine = lineOf(lastId) || 0;
      follow.top = follow.slowest = follow.lastLine;
      this.#report(follow, true);
      this.#wakeReader();
      // A pass of the bound on rooms between the read and the report may have deleted it.
      this.#startOverIfGone(follow).catch(ignore);
    });
  }

  /**
   * Settles once this node reads `room`'s stream, or at once when nobody here is
   * in the room: from then on, whatever is said there reaches the people here.
   * For tests and tools; the core never waits for it.
   */
  async following(room: RoomName): Promise<void> {
    const follow = this.#follows.get(roomKey(room));
    if (follow === undefined || follow.cursor !== null) return;
    await this.store.load(room);
  }

  #unfollow(room: RoomName): void {
    const key = roomKey(room);
    const follow = this.#follows.get(key);
    if (follow === undefined) return;
    this.#follows.delete(key);
    this.#byStream.delete(follow.stream);
    this.store.unload(room);
    this.#unhold(follow);
    if (this.#writable) {
      this.#commands.command("HDEL", this.#keys.reading(this.node), key).catch(ignore);
    }
  }

  // Flow control: no node falls so far behind in a room that lines are trimmed under it.

  /** Tells the others how far this node has read a room: every few lines, or 100 ms. */
  #report(follow: Follow, now: boolean): void {
    if (follow.lastLine === follow.reported || !this.#writable) return;
    const time = performance.now();
    if (
      !now && follow.lastLine - follow.reported < this.#reportEvery &&
      time - follow.reportedAt < 100
    ) return;
    follow.reported = follow.lastLine;
    follow.reportedAt = time;
    this.#commands.command(
      "HSET",
      this.#keys.reading(this.node),
      roomKey(follow.room),
      follow.lastLine,
    )
      .catch(ignore);
  }

  /**
   * Asks how far the slowest node has read a room this node writes to: holds
   * the room's senders here past `#high` lines behind, lets them go under
   * `#low`, and while it holds, asks again every 20 ms.
   */
  #checkLag(follow: Follow): void {
    if (follow.checking || !this.#writable) return;
    follow.checking = true;
    this.#eval("SLOWEST", [], [this.#keys.prefix, roomKey(follow.room)]).then(
      (reply) => {
        follow.checking = false;
        const core = this.#core;
        if (core === null || this.#follows.get(roomKey(follow.room)) !== follow) {
          return this.#unhold(follow);
        }
        follow.slowest = typeof reply === "number" && reply >= 0 ? reply : follow.top;
        const lag = follow.top + follow.pending - follow.slowest;
        const now = performance.now();
        if (core.closing || !this.#writable || (follow.held !== null && lag < this.#low)) {
          return this.#unhold(follow);
        }
        if (lag > this.#high) {
          const room = core.findRoom(follow.room);
          if (follow.held === null && room !== undefined) this.#hold(follow, room);
          if (follow.held === null) return;
          if (now - follow.heldSince > 2 * this.#timeout) {
            // A node that reads but never catches up must not hold the room for ever.
            this.#unhold(follow);
            follow.calmUntil = now + 2 * this.#timeout;
            core.log.event({
              event: "cluster",
              message: `a node reads ${follow.room} ${lag} lines behind: ` +
                "its senders here no longer wait for it",
            });
            return;
          }
          if (now - follow.toldAt > 10_000) {
            follow.toldAt = now;
            core.log.event({
              event: "cluster",
              message: `${follow.room}: a node reads ${lag} lines behind; its senders here wait`,
            });
          }
        }
        if (follow.held === null) return;
        follow.timer = setTimeout(() => {
          follow.timer = undefined;
          this.#checkLag(follow);
        }, 20);
      },
      () => {
        follow.checking = false;
        this.#unhold(follow);
      },
    );
  }

  /** Makes `room`'s senders here wait; false when this must not be now. */
  #hold(follow: Follow, room: Room): boolean {
    const now = performance.now();
    if (follow.held !== null || now < follow.calmUntil) return false;
    room.pause(true);
    follow.held = room;
    follow.heldSince = now;
    return true;
  }

  #unhold(follow: Follow): void {
    clearTimeout(follow.timer);
    follow.timer = undefined;
    const room = follow.held;
    follow.held = null;
    room?.pause(false);
  }

  /** Ends a blocking read at once, so the next one includes a room just followed. */
  #wakeReader(): void {
    if (this.#blocked && this.#writable) this.#send(this.node, { type: "wake", node: this.node });
  }

  // Reading what the other nodes write.

  async #readLoop(): Promise<void> {
    while (this.#state !== "closed") {
      if (this.#state !== "up" || !this.#reader.connected) {
        await this.#changed();
        continue;
      }
      const follows = [...this.#follows.values()].filter((f) => f.cursor !== null);
      const keys: Arg[] = [this.#inbox, this.#keys.events];
      const ids: Arg[] = [this.#inboxCursor, this.#eventsCursor];
      for (const follow of follows) {
        keys.push(follow.stream);
        ids.push(follow.cursor!);
      }
      const generation = this.#generation;
      let reply: Reply;
      this.#blocked = true;
      try {
        reply = await this.#reader.command(
          "XREAD",
          "COUNT",
          READ_COUNT,
          "BLOCK",
          BLOCK_MS,
          "STREAMS",
          ...keys,
          ...ids,
        );
      } catch (error) {
        if (this.#closed) return;
        if (!(error instanceof RedisConnectionError)) {
          this.#core?.log.event({
            event: "error",
            peer: null,
            message: `cluster read: ${(error as Error).message}`,
          });
          await this.#changed(1000);
        }
        continue;
      } finally {
        this.#blocked = false;
      }
      if (generation !== this.#generation || reply === null) continue;
      const wait = this.#process(reply);
      if (wait !== undefined) await wait;
    }
  }

  /**
   * Handles one read: the inbox, then the rooms, then the events. Events come
   * last so that a leave is shown after the leaver's last lines, which Redis
   * had before it (both are in this read, or the lines in an earlier one),
   * unless a room's read came back full: then its later lines are still to
   * come, and the events wait for the next read (a few times at most).
   * Returns a promise when a room here is held by a slow member, or the
   * operator's log is: the next read waits for it, and Redis keeps the rest.
   */
  #process(reply: Reply): Promise<unknown> | undefined {
    const core = this.#core!;
    if (!Array.isArray(reply)) return undefined;
    let events: Reply[] | null = null;
    let full = false;
    const waits: Promise<unknown>[] = [];
    const rooms: [Follow, Reply[]][] = [];
    for (const item of reply) {
      if (!Array.isArray(item) || !Array.isArray(item[1])) continue;
      const key = text(item[0]);
      const entries = item[1];
      if (key === this.#inbox) this.#readInbox(entries);
      else if (key === this.#keys.events) events = entries;
      else {
        const follow = this.#byStream.get(key);
        if (follow !== undefined) rooms.push([follow, entries]);
      }
    }
    for (const [follow, entries] of rooms) {
      if (entries.length >= READ_COUNT) full = true;
      const room = this.#readRoom(follow, entries);
      const held = room?.held;
      if (held !== undefined) waits.push(held);
    }
    if (events !== null) {
      if (full && this.#deferred < DEFER_LIMIT) this.#deferred++;
      else {
        this.#deferred = 0;
        this.#readEvents(events);
      }
    }
    const log = core.log.ready();
    if (log !== undefined) waits.push(log);
    return waits.length === 0 ? undefined : Promise.all(waits);
  }

  /**
   * A room's new entries: lines and notices of other nodes, to the members
   * here. Lines trimmed before this node read them are told where they were.
   */
  #readRoom(follow: Follow, entries: Reply[]): Room | undefined {
    const core = this.#core!;
    const room = core.findRoom(follow.room);
    for (const entry of entries) {
      if (!Array.isArray(entry) || !Array.isArray(entry[1])) continue;
      const id = text(entry[0]);
      const fields = entry[1];
      const last = lineOf(id);
      follow.cursor = id;
      if (isWord(fields[0], "h") && fields[3] instanceof Uint8Array) {
        const body = fields[3];
        this.#gap(follow, last, countLines(body));
        const header = fields[1] instanceof Uint8Array ? parseLinesHeader(fields[1]) : null;
        if (header === null || header.node === this.node || room === undefined) continue;
        if (header.kind === "notice") {
          for (const line of text(body).split("\n")) {
            core.remote.notice(room, line, header.time, header.node);
          }
          continue;
        }
        const batch = this.#batch;
        fillBatch(batch, body);
        batch.kind = header.kind;
        batch.time = header.time;
        core.remote.lines(room, { id: header.id, name: header.name }, header.node, batch);
      } else if (isWord(fields[0], "e") && fields[1] instanceof Uint8Array) {
        this.#gap(follow, last, 0);
        const notice = parseJson(fields[1]) as Record<string, unknown> | null;
        if (notice === null || notice.node === this.node || room === undefined) continue;
        if (notice.type === "join" && isId(notice.id) && typeof notice.name === "string") {
          const from = typeof notice.from === "string" ? notice.from : undefined;
          core.remote.joinNotice(room, { id: notice.id, name: notice.name }, from);
        }
      }
    }
    this.#report(follow, false);
    return room;
  }

  /** Moves a room's line count to an entry's, telling of lines trimmed in between. */
  #gap(follow: Follow, last: number, count: number): void {
    const missed = missedBefore(follow.lastLine, last, count);
    follow.lastLine = Math.max(follow.lastLine, last);
    follow.top = Math.max(follow.top, follow.lastLine);
    if (missed === 0) return;
    const core = this.#core!;
    core.remote.tellRoom(
      follow.room,
      `${missed} line${missed === 1 ? " was" : "s were"} missed in ${follow.room}: ` +
        "this server fell further behind than the cluster keeps lines",
    );
    core.log.event({
      event: "cluster",
      message: `${missed} lines of ${follow.room} were missed (trimmed before this node read them)`,
    });
  }

  /** Who is where: every node's account of its people. */
  #readEvents(entries: Reply[]): void {
    const remote = this.#core!.remote;
    for (const entry of entries) {
      if (!Array.isArray(entry) || !Array.isArray(entry[1])) continue;
      this.#eventsCursor = text(entry[0]);
      const fields = entry[1];
      if (!isWord(fields[0], "e") || !(fields[1] instanceof Uint8Array)) continue;
      const event = parseJson(fields[1]) as Record<string, unknown> | null;
      if (event === null) continue;
      const node = event.node as string;
      if (event.type === "gone") {
        this.#gone(node);
        continue;
      }
      if (node === this.node) continue;
      const id = event.id;
      switch (event.type) {
        case "person": {
          const person = parsePerson(event.person);
          if (person !== null && person.node === node) remote.connected(person);
          break;
        }
        case "join":
          if (isId(id) && typeof event.room === "string") remote.joined(id, event.room);
          break;
        case "part":
          if (isId(id) && typeof event.room === "string") {
            remote.parted(id, event.room, {
              ...(typeof event.to === "string" ? { to: event.to } : {}),
              ...(typeof event.reason === "string" ? { reason: event.reason } : {}),
            });
          }
          break;
        case "quit":
          if (isId(id) && typeof event.reason === "string") remote.quit(id, event.reason);
          break;
        case "nick":
          if (isId(id) && typeof event.name === "string") remote.renamed(id, event.name);
          break;
        case "away":
          if (isId(id)) remote.away(id, typeof event.text === "string" ? event.text : null);
          break;
        case "topic":
          if (
            typeof event.room === "string" && typeof event.topic === "string" &&
            typeof event.by === "string" && typeof event.time === "number"
          ) remote.topic(event.room, event.topic, event.by, event.time, node);
          break;
        case "broadcast":
          if (typeof event.text === "string") remote.broadcast(event.text, node);
          break;
        case "unshared":
          if (typeof event.room === "string" && isId(event.count)) {
            const count = event.count;
            remote.tellRoom(
              event.room,
              `${count} line${count === 1 ? " was" : "s were"} missed in ${event.room}: ` +
                `said on ${node} while it could not reach the cluster`,
            );
          }
          break;
        case "roster":
          if (Array.isArray(event.ids)) {
            remote.keepOnly(
              node,
              new Set(event.ids.filter(isId)),
              "left while the cluster was degraded",
            );
          }
          break;
      }
    }
  }

  /** Private messages and kicks for the people here. */
  #readInbox(entries: Reply[]): void {
    const remote = this.#core!.remote;
    for (const entry of entries) {
      if (!Array.isArray(entry) || !Array.isArray(entry[1])) continue;
      this.#inboxCursor = text(entry[0]);
      const fields = entry[1];
      if (!isWord(fields[0], "e") || !(fields[1] instanceof Uint8Array)) continue;
      const message = parseJson(fields[1]) as Record<string, unknown> | null;
      if (message === null) continue;
      if (message.type === "private") {
        const from = message.from as Record<string, unknown> | null;
        const sender = from !== null && typeof from === "object" && isId(from.id) &&
            typeof from.name === "string"
          ? { id: from.id, name: from.name }
          : null;
        if (
          (from === null || sender !== null) && isId(message.to) &&
          typeof message.text === "string" && typeof message.time === "number"
        ) {
          remote.private({
            from: sender,
            node: message.node as string,
            to: message.to,
            text: message.text,
            action: message.action === true,
            time: message.time,
            notice: message.notice === true,
          });
        }
      } else if (message.type === "kick" && isId(message.id)) {
        remote.kick(message.id, typeof message.reason === "string" ? message.reason : "");
      }
    }
  }

  /** A node stopped refreshing its liveness key and was removed; its people are gone. */
  #gone(node: string): void {
    if (node === this.node) {
      // This node stalled for longer than the timeout and the others let it go;
      // unless the heartbeat noticed first and it registered again already.
      if (this.#resyncing !== null) return;
      this.#commands.string("GET", this.#keys.alive(this.node)).then((holder) => {
        if (holder !== this.#incarnation && this.#resyncing === null) this.#requestResync();
      }, ignore);
      return;
    }
    this.#missing.delete(node);
    const count = this.#core!.remote.removeNode(node, "connection lost");
    this.#core!.log.event({
      event: "cluster",
      message: `node ${node} stopped answering; its ${
        plural(count, "person", "people")
      } left (connection lost)`,
    });
  }

  // Liveness, and the other nodes'.

  #beat(): void {
    if (this.#state !== "up") return;
    const c = this.#commands;
    c.command("SET", this.#keys.alive(this.node), this.#incarnation, "XX", "PX", this.#timeout)
      .then((reply) => {
        // Gone: this node was taken for dead (it stalled), or Redis lost its data.
        if (reply === null) this.#requestResync();
      }, ignore);
    this.#eval("REAP", [], [this.#keys.prefix, EVENTS_KEEP]).catch(ignore);
    for (const follow of this.#follows.values()) this.#report(follow, true);
    c.command("SMEMBERS", this.#keys.nodes).then((reply) => this.#checkMissing(reply), ignore);
  }

  /**
   * People of nodes that are not registered (after Redis lost its data, a node
   * that never came back) are let go after the node timeout, as if reaped.
   */
  #checkMissing(reply: Reply): void {
    const core = this.#core;
    if (core === null || !Array.isArray(reply) || this.#state !== "up") return;
    const registered = new Set(reply.map(text));
    const known = new Set<string>();
    for (const person of core.remote.people()) known.add(person.node);
    const now = performance.now();
    for (const node of known) {
      if (registered.has(node)) {
        this.#missing.delete(node);
        continue;
      }
      const since = this.#missing.get(node);
      if (since === undefined) this.#missing.set(node, now);
      else if (now - since > this.#timeout) this.#gone(node);
    }
    for (const node of this.#missing.keys()) if (!known.has(node)) this.#missing.delete(node);
  }

  // Outages.

  #onCommandsEvent(event: RedisEvent): void {
    if (this.#state === "closed") return;
    if (event.type === "disconnected") {
      this.#state = "down";
      // How far the others read cannot be known now: nobody waits for them.
      for (const follow of this.#follows.values()) this.#unhold(follow);
      this.#problem = `redis at ${this.where} is out of reach`;
      const core = this.#core;
      if (core !== null && !this.#told) {
        this.#told = true;
        core.remote.tell(
          `the cluster is degraded: ${this.#problem}; ` +
            "people on other servers cannot hear you until it is back",
        );
        core.log.event({ event: "cluster", message: `degraded: ${event.error.message}` });
      }
    } else if (event.type === "reconnected") {
      this.#requestResync();
    }
    this.#notify();
  }

  #requestResync(): void {
    this.#resyncWanted = true;
    this.#resyncing ??= this.#resyncLoop().finally(() => this.#resyncing = null);
  }

  async #resyncLoop(): Promise<void> {
    while (this.#resyncWanted && this.#state !== "closed") {
      this.#resyncWanted = false;
      try {
        await this.#resync();
      } catch (error) {
        if (this.#closed) return;
        if (this.#state !== "down") this.#state = "down";
        this.#problem ??= (error as Error).message;
        // A lost connection resyncs on its reconnected event; anything else, in a while.
        if (!(error instanceof RedisConnectionError)) {
          this.#core?.log.event({
            event: "cluster",
            message: `resync failed: ${(error as Error).message}`,
          });
          await this.#changed(1000);
          this.#resyncWanted = true;
        }
      }
    }
  }

  /**
   * Rooms nobody reads lose their history past MAX_HISTORY_ROOMS (scripts.ts,
   * APPEND), and start again from line 1: a room this node follows is read
   * (its `reading` field is there) from its report on, but not before it,
   * after the first read or while this node was taken for dead. Called once
   * that report is on its way (on the same connection, so it comes first):
   * a room whose counter is now behind where this node had read it started
   * again, and is read from its start. (A room that got more lines than that
   * meanwhile cannot be told from one that kept its history: the count of
   * lines missed it then gives is short.)
   */
  async #startOverIfGone(follow: Follow): Promise<void> {
    const count = await this.#commands.command("GET", this.#keys.lineCount(follow.room));
    if ((count === null ? 0 : Number(text(count))) >= follow.lastLine) return;
    if (this.#follows.get(roomKey(follow.room)) !== follow) return;
    follow.cursor = "0-0";
    follow.lastLine = follow.top = follow.slowest = 0;
    follow.reported = -1;
    this.#report(follow, true);
    this.#wakeReader();
  }

  /**
   * Back in touch with Redis, or taken for dead by the others: load the
   * scripts, register again with everyone here, read the cluster afresh,
   * report what could not be shared, and carry on reading where this node
   * stopped (from the start, if Redis lost its data).
   */
  async #resync(): Promise<void> {
    const core = this.#core;
    if (core === null) return;
    const c = this.#commands;
    await this.#loadScripts();
    const epoch = await this.#readEpoch();
    const lost = epoch !== this.#epoch;
    this.#epoch = epoch;
    const before = await c.command(
      "SET",
      this.#keys.alive(this.node),
      this.#incarnation,
      "PX",
      this.#timeout,
      "GET",
    );
    const reaped = !lost && before === null;
    this.#state = "syncing";
    await c.command("SADD", this.#keys.nodes, this.node);
    if (lost) {
      // Redis lost everything: streams start again from their first entry.
      this.#generation++;
      await this.#eval("RAISE", [this.#keys.ids], [this.#blockIds.high]);
      this.#eventsCursor = "0-0";
      this.#inboxCursor = "0-0";
      for (const follow of this.#follows.values()) {
        follow.cursor = "0-0";
        follow.lastLine = follow.top = follow.slowest = 0;
        follow.reported = -1;
      }
    }
    await this.#register(core, reaped);
    const snapshot = await this.#takeSnapshot();
    this.#generation++;
    this.#apply(snapshot, true);
    for (const follow of this.#follows.values()) {
      if (follow.cursor !== null) {
        if (reaped) {
          // Its `reading` hash went with it: written again first.
          follow.reported = -1;
          this.#report(follow, true);
          await this.#startOverIfGone(follow);
        }
        continue;
      }
      const last = await c.command("XREVRANGE", follow.stream, "+", "-", "COUNT", 1);
      follow.cursor = Array.isArray(last) && Array.isArray(last[0]) ? text(last[0][0]) : "0-0";
      follow.lastLine = lineOf(follow.cursor) || 0;
    }
    for (const { room, count } of this.#unshared.values()) {
      this.#event({ type: "unshared", node: this.node, room, count });
      core.log.event({
        event: "cluster",
        message: `${count} lines of ${room} said here were not shared`,
      });
    }
    this.#unshared.clear();
    this.#state = "up";
    this.#problem = null;
    if (this.#told) {
      this.#told = false;
      core.remote.tell("the cluster is back");
    }
    core.log.event({
      event: "cluster",
      message: `back in the cluster (${
        lost
          ? "redis had lost its data"
          : reaped
          ? "this node had been taken for dead"
          : "redis kept its data"
      }; ${plural(core.remote.size, "person", "people")} on other nodes)`,
    });
    this.#notify();
  }

  /**
   * Registers every person here again, claiming their names: one that someone
   * else took meanwhile goes back to `user<id>`, and its holder here is told.
   */
  async #register(core: ChatCore, reaped: boolean): Promise<void> {
    const sessions = [...core.directory.entries()];
    const claims = sessions.map((session) => {
      if (session.name === `user${session.id}`) return Promise.resolve(true);
      return this.#eval("CLAIM", [this.#keys.name(nameKey(session.name))], [
        `${this.node} ${session.id}`,
        this.node,
        this.#keys.alivePrefix,
      ]).then((reply) => reply === 1);
    });
    const granted = await Promise.all(claims);
    for (let i = 0; i < sessions.length; i++) {
      const session = sessions[i];
      // Gone meanwhile: its quit went out already; a record now would outlive it.
      if (core.directory.get(session.id) !== session) continue;
      if (!granted[i]) {
        const old = session.name;
        // The default name is always free: its id is this person's alone.
        await core.directory.rename(session, `user${session.id}`);
        session.info(
          `the name "${old}" was taken on another server while the cluster was degraded`,
        );
        session.renamed(old);
      }
      this.#record(session, { type: "person", node: this.node, person: this.#person(session) });
      if (reaped) {
        for (const room of session.rooms) {
          const notice = encodeJson({
            type: "join",
            node: this.node,
            id: session.id,
            name: session.name,
          });
          this.#append(room.name, 0, ["e", notice]).catch(ignore);
        }
      }
    }
    // Everyone here now: people who came during the claims were announced already.
    const ids = [...core.directory.entries()].map((session) => session.id);
    this.#event({ type: "roster", node: this.node, ids });
  }

  /** Reads who is where, and where the events and this node's inbox end, as one step. */
  async #takeSnapshot(): Promise<Snapshot> {
    const exec = this.#transaction([
      ["XREVRANGE", this.#keys.events, "+", "-", "COUNT", 1],
      ["XREVRANGE", this.#inbox, "+", "-", "COUNT", 1],
      ["HGETALL", this.#keys.people],
      ["SMEMBERS", this.#keys.nodes],
    ]);
    const reply = await exec;
    if (!Array.isArray(reply) || reply.length !== 4) {
      throw new Error("the snapshot transaction failed");
    }
    const [events, inbox, people, nodes] = reply;
    const newest = (r: Reply) => Array.isArray(r) && Array.isArray(r[0]) ? text(r[0][0]) : "0-0";
    const records: PersonRecord[] = [];
    if (Array.isArray(people)) {
      for (let i = 1; i < people.length; i += 2) {
        try {
          const person = parsePerson(JSON.parse(text(people[i])));
          if (person !== null) records.push(person);
        } catch (error) {
          if (!(error instanceof SyntaxError)) throw error;
        }
      }
    }
    return {
      eventsCursor: newest(events),
      inboxCursor: newest(inbox),
      people: records,
      nodes: new Set(Array.isArray(nodes) ? nodes.map(text) : []),
    };
  }

  /**
   * Brings the people of other nodes up to date with a snapshot. After an
   * outage (`resync`), those gone from it whose node is registered left
   * meanwhile; those of a node that is not registered are kept a while
   * (#checkMissing): it may be on its way back.
   */
  #apply(snapshot: Snapshot, resync: boolean): void {
    const remote = this.#core!.remote;
    const present = new Set<number>();
    for (const person of snapshot.people) {
      if (person.node === this.node) continue;
      present.add(person.id);
      remote.upsert(person);
    }
    if (resync) {
      for (const person of [...remote.people()]) {
        if (!present.has(person.id) && snapshot.nodes.has(person.node)) {
          remote.quit(person.id, "left while the cluster was degraded");
        }
      }
      // Events go on from where this node stopped (from the start if Redis
      // lost its data): replayed onto the snapshot, the changes come to the
      // same, and what is not state (lines not shared, topics, private
      // messages) is delivered late rather than never.
      return;
    }
    this.#inboxCursor = snapshot.inboxCursor;
    this.#eventsCursor = snapshot.eventsCursor;
  }

  async #loadScripts(): Promise<void> {
    const names = Object.keys(SCRIPTS) as (keyof typeof SCRIPTS)[];
    const shas = await Promise.all(
      names.map((name) => this.#commands.string("SCRIPT", "LOAD", SCRIPTS[name])),
    );
    names.forEach((name, i) => this.#sha[name] = shas[i]!);
  }

  /** The data epoch: a new one means Redis holds none of what the cluster wrote before. */
  async #readEpoch(): Promise<string> {
    const c = this.#commands;
    const [, epoch] = await Promise.all([
      c.command("SET", this.#keys.epoch, crypto.randomUUID(), "NX"),
      c.string("GET", this.#keys.epoch),
    ]);
    return epoch ?? "";
  }

  // Waiting for the state to change, without sleeping in a loop.

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Settles when the state or a connection changes, or after `ms`. */
  #changed(ms = BLOCK_MS): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#waiters.push(done);
    });
  }
}

/**
 * Ids from a shared counter, a block at a time, the next block fetched when
 * half of the current one is used. If Redis cannot hand one out in time,
 * ids are made up far above any block, from a random base (a collision
 * would need two nodes cut off at once drawing the same millionth of 10^12).
 */
class BlockIds implements IdSource {
  readonly #size: number;
  readonly #fetch: () => Promise<number>;
  #next = 1;
  /** The last id of the current block. */
  #end = 0;
  /** The next block, fetched ahead: its last id. */
  #spare: number | null = null;
  #fetching = false;
  /** The highest id handed out or held for handing out. */
  high = 0;

  constructor(size: number, fetch: () => Promise<number>) {
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new RangeError(`Invalid idBlock "${size}": must be a positive whole number`);
    }
    this.#size = size;
    this.#fetch = fetch;
  }

  /** Takes the first block: before anyone connects. */
  async fill(): Promise<void> {
    const end = await this.#fetch();
    this.#next = end - this.#size + 1;
    this.#end = end;
    this.high = Math.max(this.high, end);
  }

  next(): number {
    if (this.#next > this.#end) {
      if (this.#spare !== null) {
        this.#end = this.#spare;
        this.#next = this.#spare - this.#size + 1;
        this.#spare = null;
      } else if (this.#next < FALLBACK_IDS) {
        this.#next = FALLBACK_IDS + Math.floor(Math.random() * 1e6) * 1e6;
        this.#end = this.#next + 1e6 - 1;
      }
    }
    const id = this.#next++;
    this.high = Math.max(this.high, id);
    if (this.#spare === null && !this.#fetching && this.#end - this.#next < this.#size / 2) {
      this.#fetching = true;
      this.#fetch().then(
        (end) => {
          this.#spare = end;
          this.high = Math.max(this.high, end);
        },
        ignore,
      ).finally(() => this.#fetching = false);
    }
    return id;
  }
}

/** `<hostname>:<pid>`, or `node:<pid>` when the host name may not be read. */
export function defaultNodeName(): string {
  let host = "node";
  try {
    host = Deno.hostname().replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 40) || "node";
  } catch (error) {
    if (
      !(error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied)
    ) {
      throw error;
    }
  }
  return `${host}:${Deno.pid}`;
}

function ignore(): void {}

/** `1 node`, `2 nodes`. */
function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
