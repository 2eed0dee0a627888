/**
 * The chat core: the directory, the rooms, the store and the log, and what the
 * operator can do. Transports attach peers to it (see peer.ts); it imports no
 * transport, no socket and no store implementation.
 *
 * @module
 */

import { BanList, bannedText, hostOf, parseBanMask } from "./bans.ts";
import type { Bus } from "./bus.ts";
import { Directory, type IdSource, type NameClaims } from "./directory.ts";
import { type ServerLog, SILENT_LOG } from "./events.ts";
import type { RoomEvent, RoomName } from "./messages.ts";
import { checkRoomName, roomKey } from "./names.ts";
import { type PasswordVerdict, ServerPassword } from "./password.ts";
import { type Peer, SaidBatch } from "./peer.ts";
import { Remote, type RemotePerson } from "./remote.ts";
import { Room } from "./room.ts";
import { Session, whoOf } from "./session.ts";
import { MemoryStore } from "../store/memory.ts";
import { type Ban, MAX_TOPICS, setNewest, type Store } from "../store/store.ts";
import { sanitizeText } from "../wire/text.ts";

/** Options for {@linkcode ChatCore}; every one has a default. */
export interface ChatCoreOptions {
  /**
   * A chat room: people talk with each other, in rooms. Otherwise each client
   * talks with the operator only, as in the tutorial.
   * @default {false}
   */
  relay?: boolean;
  /**
   * The room line clients start in, and go back to with `/part`.
   * @default {"#lobby"}
   */
  defaultRoom?: RoomName;
  /**
   * Lines per second one person may say; excess lines are dropped. 0: no limit.
   * @default {0}
   */
  flood?: number;
  /**
   * Joins and leaves are announced while a room has at most this many people:
   * in a room of thousands they would be most of the traffic.
   * @default {100}
   */
  presenceLimit?: number;
  /**
   * Lines of history shown on joining a room; 0 for none.
   * @default {50}
   */
  history?: number;
  /** Where history, topics and bans live. @default a {@linkcode MemoryStore} */
  store?: Store;
  /**
   * The message of the day: lines everyone reads after the welcome.
   * @default none
   */
  motd?: readonly string[];
  /** Where events and messages are reported. @default a log that drops everything */
  log?: ServerLog;
  /** Where ids come from (a cluster shares them). @default a counter from 1 */
  ids?: IdSource;
  /** Who else must agree to a name (a cluster). @default nobody */
  claims?: NameClaims;
  /**
   * The other nodes of a cluster: what happens here is told to them, and
   * theirs comes in through {@linkcode ChatCore.remote}. @default none: alone
   */
  bus?: Bus;
  /**
   * The window, in milliseconds, in which a peer that is behind must make
   * progress; a peer that catches up by less than `minProgress` bytes in one is
   * disconnected as too slow. Long enough that a reader on a busy machine is
   * not mistaken for a stalled one: while it runs, only heavy senders in the
   * stalled reader's rooms wait (see `lightRate`).
   * @default {2000}
   */
  slowTimeout?: number;
  /** @default {65536} */
  minProgress?: number;
  /**
   * Bytes per second (with a burst of four seconds' worth) a person may say
   * and still never wait for a room member who is behind: people talking at
   * a human pace are not held by someone else's slow connection, while heavy
   * senders, who fill the slow member's queue, wait for it. 0: everyone waits.
   * @default {16384}
   */
  lightRate?: number;
  /**
   * The server password: every transport asks for it before a person is
   * attached (the line protocol's `/pass`, IRC's PASS), through
   * {@linkcode ChatCore.verifyPassword}. A string, or a
   * {@linkcode ServerPassword} with its own delay and throttling.
   * @default none: anyone may connect
   */
  password?: string | ServerPassword;
  /**
   * Milliseconds a person may go without saying or doing anything before they
   * are disconnected; 0 for never. Bytes that never make a complete line do not
   * count as activity.
   * @default {0}
   */
  idleTimeout?: number;
}

/** The options with their defaults filled in. */
export interface CoreSettings {
  readonly relay: boolean;
  readonly defaultRoom: RoomName;
  readonly flood: number;
  readonly presenceLimit: number;
  readonly history: number;
  readonly motd: readonly string[];
  readonly slowTimeout: number;
  readonly minProgress: number;
  readonly lightRate: number;
  readonly idleTimeout: number;
}

/**
 * The chat core.
 *
 * @example Two peers in the default room
 * ```ts
 * import { ChatCore } from "./chat.ts";
 * import type { ChatEvent } from "./messages.ts";
 * import type { Peer, SaidBatch, WireFormat } from "./peer.ts";
 * import assert from "node:assert/strict";
 *
 * // A wire format that renders lines as "name: text".
 * const format: WireFormat<string[]> = {
 *   name: "test",
 *   encodeLines: (_room, from, batch: SaidBatch) =>
 *     batch.ends.map((end, i) =>
 *       `${from.name}: ${new TextDecoder().decode(batch.text.bytes.subarray(batch.start(i), end))}`
 *     ),
 *   encodeEvent: () => null,
 * };
 * const peer = (got: string[]): Peer<string[]> => ({
 *   format, transport: "test", address: "-", singleRoom: true, written: 0,
 *   send: (lines) => got.push(...lines),
 *   deliver: (_event: ChatEvent) => {},
 *   disconnect: () => {},
 *   echoes: () => false,
 * });
 * const core = new ChatCore({ relay: true });
 * const [a, b]: string[][] = [[], []];
 * const ana = core.attach(peer(a));
 * core.welcome(ana);
 * core.welcome(core.attach(peer(b)));
 * const hola = new TextEncoder().encode("hola");
 * ana.say(hola, 0, hola.length);
 * ana.flush();
 * assert.deepEqual(b, ["user1: hola"]);
 * assert.deepEqual(a, []);
 * ```
 */
export class ChatCore {
  /** Everyone connected here. */
  readonly directory: Directory<Session>;
  /** In a cluster, everyone connected to other nodes, and what they say here. */
  readonly remote: Remote;
  /** The other nodes of a cluster; null alone. */
  readonly bus: Bus | null;
  /** The settings in force. */
  readonly options: CoreSettings;
  /** Where history, topics and bans live. */
  readonly store: Store;
  /** The bans in force (kept in the store). */
  readonly bans: BanList;
  /**
   * Where the operator sees what happens. Lines said are logged a batch at a
   * time; anything else logged first logs the lines said before it, so the
   * log keeps the order things happened in.
   */
  readonly log: ServerLog;
  /** The log as given. */
  readonly #log: ServerLog;
  /** Set when the server shuts down: nobody is told who leaves then, and nobody joins. */
  closing = false;
  /** Rooms by key (lower case); a room is dropped when its last member leaves. */
  readonly #rooms = new Map<string, Room>();
  /** Topics kept while their room is empty, by room key: the {@linkcode MAX_TOPICS} set last. */
  readonly #topics = new Map<string, { topic: string; by: string; time: number }>();
  /**
   * The lines of the read being handled, ready to relay. One batch serves
   * every session: a read is handled from its first line to its flush without
   * an await, so no two sessions are ever halfway through at once.
   */
  readonly #batch = new SaidBatch();
  /** Who the batch's lines are from, and where they go. */
  #batchFrom: Session | null = null;
  #batchRoom: Room | null = null;
  /** Lines of the batch given to the log so far (see {@linkcode log}). */
  #batchLogged = 0;
  /**
   * Sessions more than their send queue behind, each with the start of its
   * current progress window: when, and how much had been written to it then.
   */
  readonly #behind = new Map<Session, { since: number; written: number }>();
  /** Checks `#behind` for sessions that stay behind too long; runs while it is not empty. */
  #slowTimer: ReturnType<typeof setInterval> | undefined;
  /** The idle sweep, when an idle timeout is set. */
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  /** Woken when the last session closes during shutdown. */
  #allClosed: PromiseWithResolvers<void> | null = null;
  /** Settles once topics and bans are loaded from the store. */
  readonly ready: Promise<void>;
  /** The server password, and who got it wrong; null when there is none. */
  readonly #password: ServerPassword | null;

  /** A core; see {@linkcode ChatCoreOptions}. */
  constructor(options: ChatCoreOptions = {}) {
    const defaultRoom = options.defaultRoom ?? "#lobby";
    const problem = checkRoomName(defaultRoom);
    if (problem !== null) throw new RangeError(`Invalid defaultRoom "${defaultRoom}": ${problem}`);
    this.options = {
      relay: options.relay ?? false,
      defaultRoom,
      flood: nonNegative("flood", options.flood ?? 0),
      presenceLimit: nonNegative("presenceLimit", options.presenceLimit ?? 100),
      history: nonNegative("history", options.history ?? 50),
      motd: (options.motd ?? []).map(sanitizeText),
      slowTimeout: nonNegative("slowTimeout", options.slowTimeout ?? 2000),
      minProgress: nonNegative("minProgress", options.minProgress ?? 64 * 1024),
      lightRate: nonNegative("lightRate", options.lightRate ?? 16 * 1024),
      idleTimeout: nonNegative("idleTimeout", options.idleTimeout ?? 0),
    };
    this.directory = new Directory({ ids: options.ids, claims: options.claims });
    this.store = options.store ?? new MemoryStore();
    const log = this.#log = options.log ?? SILENT_LOG;
    this.log = {
      event: (event) => {
        this.#logLines();
        log.event(event);
      },
      message: (room, peer, text, start, end, time) => {
        this.#logLines();
        log.message(room, peer, text, start, end, time);
      },
      ready: () => log.ready(),
    };
    this.bans = new BanList(this.store);
    this.#password = typeof options.password === "string"
      ? new ServerPassword(options.password)
      : options.password ?? null;
    this.remote = new Remote(this);
    this.bus = options.bus ?? null;
    this.bus?.attach(this);
    this.ready = Promise.all([this.#loadTopics(), this.bans.load()]).then(() => {});
    if (this.options.idleTimeout > 0) {
      // One sweep for everyone instead of a timer each: cheaper per idle person.
      const every = Math.max(50, Math.min(1000, this.options.idleTimeout / 4));
      this.#idleTimer = setInterval(() => this.#sweepIdle(), every);
    }
  }

  async #loadTopics(): Promise<void> {
    // Oldest first: past MAX_TOPICS, the newest are the ones kept.
    const topics = (await this.store.topics()).sort((a, b) => a.time - b.time);
    for (const t of topics) this.rememberTopic(t.room, t.topic, t.by, t.time);
  }

  /** Keeps a room's topic for when it is empty: the {@linkcode MAX_TOPICS} set last. */
  #keepTopic(name: RoomName, topic: string, by: string, time: number): void {
    setNewest(this.#topics, roomKey(name), { topic, by, time }, MAX_TOPICS);
  }

  /** Keeps a topic set elsewhere (the store, another node), and shows it in the room if it exists. */
  rememberTopic(name: RoomName, topic: string, by: string, time: number): void {
    this.#keepTopic(name, topic, by, time);
    const room = this.findRoom(name);
    if (room !== undefined) {
      room.topic = topic;
      room.topicBy = by;
      room.topicTime = time;
    }
  }

  /** How many people are connected here. */
  get size(): number {
    return this.directory.size;
  }

  /** Whether connecting takes the server password (see {@linkcode verifyPassword}). */
  get passwordRequired(): boolean {
    return this.#password !== null;
  }

  /**
   * Checks the password a client gave before it is attached (the line
   * protocol's `/pass`, IRC's `PASS`, the web page's `pass`), the same way for
   * every transport: in constant time, answered at once when right and after a
   * delay when wrong; an address (`host`, without its port) that fails too
   * often is refused for a while, whatever it sends. No password given
   * (`null`) counts as a wrong one. Anyone passes when there is no password.
   */
  verifyPassword(host: string, given: string | null | undefined): Promise<PasswordVerdict> {
    if (this.#password === null) return Promise.resolve({ ok: true });
    return this.#password.check(host, given ?? "");
  }

  /**
   * Whether `given` is the server password (anything is, when there is none),
   * compared in constant time but without the delay and throttling of
   * {@linkcode verifyPassword}, which transports should use.
   */
  checkPassword(given: string | null | undefined): boolean {
    if (this.#password === null) return true;
    return given !== null && given !== undefined && this.#password.matches(given);
  }

  /**
   * A new session for `peer`, registered under its default name `user<id>`.
   * Nothing is sent yet: the transport calls {@linkcode welcome} when it is
   * ready (at once for a line client; after registration for IRC).
   */
  attach(peer: Peer): Session {
    const session = new Session(this, peer, this.directory.nextId());
    this.directory.add(session);
    this.log.event({ event: "connect", peer: session });
    this.bus?.publish({ type: "connect", who: session });
    return session;
  }

  /**
   * Welcomes a session and (on a chat server, for a peer that is in one room
   * at a time) puts it in the default room, with that room's history.
   */
  welcome(session: Session): void {
    session.deliver({ type: "welcome", you: whoOf(session), server: "charla" });
    if (this.options.motd.length > 0) session.deliver({ type: "motd", lines: this.options.motd });
    const degraded = this.bus?.degraded;
    if (degraded) session.info(`${degraded}: people on other servers cannot hear you yet`);
    if (!this.options.relay) {
      this.#aboutConsole(session);
    } else if (session.peer.singleRoom) {
      session.enter(this.#room(this.options.defaultRoom));
    }
  }

  /**
   * Tells a session again where it stands (its name, each of its rooms with
   * their history): for a peer that switched wire format.
   */
  resume(session: Session): void {
    session.deliver({ type: "welcome", you: whoOf(session), server: "charla" });
    if (this.options.motd.length > 0) session.deliver({ type: "motd", lines: this.options.motd });
    if (!this.options.relay) this.#aboutConsole(session);
    for (const room of session.rooms) session.describe(room);
  }

  #aboutConsole(session: Session): void {
    session.info("you are talking with the operator of this server; /help lists commands");
  }

  /** The person here or, in a cluster, on another node with this name (any case) or id. */
  findPerson(target: string): Session | RemotePerson | undefined {
    return this.directory.find(target) ?? this.remote.find(target);
  }

  /** The room with this name (any case), if anyone is in it. */
  findRoom(name: RoomName): Room | undefined {
    return this.#rooms.get(roomKey(name));
  }

  /** Makes a room (the name must be valid and free); its kept topic comes back. */
  createRoom(name: RoomName): Room {
    const key = roomKey(name);
    const room = new Room(name);
    const kept = this.#topics.get(key);
    if (kept !== undefined) {
      room.topic = kept.topic;
      room.topicBy = kept.by;
      room.topicTime = kept.time;
    }
    this.#rooms.set(key, room);
    this.store.occupied?.(name, true);
    return room;
  }

  #room(name: RoomName): Room {
    return this.findRoom(name) ?? this.createRoom(name);
  }

  /** Every room with someone in it, in the order they were made. */
  rooms(): IterableIterator<Room> {
    return this.#rooms.values();
  }

  /** Forgets an empty room (its topic is kept). */
  dropIfEmpty(room: Room): void {
    if (room.size === 0 && this.#rooms.get(roomKey(room.name)) === room) {
      this.#rooms.delete(roomKey(room.name));
      this.store.occupied?.(room.name, false);
    }
  }

  /** Sets a room's topic, tells its members, keeps it. `by` null: the operator. */
  setTopic(room: Room, topic: string, by: Session | null): void {
    const name = by?.name ?? "server";
    room.topic = topic;
    room.topicBy = name;
    room.topicTime = Date.now();
    this.#keepTopic(room.name, topic, name, room.topicTime);
    this.store.setTopic({ room: room.name, topic, by: name, time: room.topicTime });
    room.broadcast({ type: "topic", room: room.name, topic, by: by === null ? null : by.name });
    this.bus?.publish({ type: "topic", room, topic, by: name, time: room.topicTime });
    this.log.event({ event: "topic", peer: by, room: room.name, topic });
  }

  /**
   * Sends `event` once to everyone who shares one of `rooms` with `except`
   * (not to `except` itself), encoded once per wire format where it can be:
   * a quit or a nick change is one line per person, however many rooms they share.
   */
  tellCoMembers(rooms: readonly Room[], event: RoomEvent, except?: Session): void {
    const limit = this.options.presenceLimit;
    if (rooms.length === 1) {
      if (rooms[0].size <= limit) rooms[0].broadcast(event, except);
      return;
    }
    const seen = new Set<Session>();
    const encoded = new Map<unknown, unknown>();
    for (const room of rooms) {
      if (room.size > limit) continue;
      for (const member of room.members) {
        if (member === except || seen.has(member)) continue;
        seen.add(member);
        const format = member.peer.format;
        let bytes = encoded.get(format);
        if (bytes === undefined) encoded.set(format, bytes = format.encodeEvent(event));
        if (bytes !== null) member.peer.send(bytes);
      }
    }
  }

  // The hot path: sessions append the lines of a read to the one batch, which
  // goes out when the read is done, the room or kind changes, or a command runs.

  /** The batch to append a line said by `from` in `room` to; earlier lines go first. */
  batchFor(from: Session, room: Room, kind: SaidBatch["kind"]): SaidBatch {
    const batch = this.#batch;
    if (this.#batchFrom !== from || this.#batchRoom !== room || batch.kind !== kind) {
      this.flushBatch();
      this.#batchFrom = from;
      this.#batchRoom = room;
      batch.kind = kind;
      batch.time = Date.now();
    }
    return batch;
  }

  /** Empties the batch; none of its lines is left to log. */
  #clearBatch(): void {
    this.#batch.clear();
    this.#batchLogged = 0;
  }

  /** Gives the log the lines of the batch it has not had (actions are logged as events). */
  #logLines(): void {
    const batch = this.#batch;
    const first = this.#batchLogged;
    const count = batch.count;
    if (first >= count) return;
    this.#batchLogged = count;
    const from = this.#batchFrom;
    const room = this.#batchRoom;
    if (batch.kind === "action" || from === null || room === null) return;
    const log = this.#log;
    if (log.lines !== undefined) return log.lines(room.name, from, batch, first);
    for (let i = first; i < count; i++) {
      log.message(room.name, from, batch.text.bytes, batch.start(i), batch.ends[i], batch.time);
    }
  }

  /** Relays the batch, if it holds anything, and keeps its lines in the history. */
  flushBatch(): void {
    // Logged first; anything logged while it is relayed finds it logged already.
    this.#logLines();
    const batch = this.#batch;
    const from = this.#batchFrom;
    const room = this.#batchRoom;
    this.#batchFrom = null;
    this.#batchRoom = null;
    if (batch.count === 0 || from === null || room === null) return this.#clearBatch();
    try {
      room.publish(from, batch);
      if (this.bus !== null) this.bus.lines(room, from, batch);
      const store = this.store;
      if (store.appendBatch !== undefined) {
        store.appendBatch(room.name, from.name, batch);
      } else {
        const text = batch.text.bytes;
        for (let i = 0; i < batch.count; i++) {
          store.append({
            room: room.name,
            time: batch.time,
            from: from.name,
            kind: batch.kind,
            text: decoder.decode(text.subarray(batch.start(i), batch.ends[i])),
          });
        }
      }
    } finally {
      // Whatever happened, these lines must not go out again with someone else's.
      this.#clearBatch();
    }
  }

  /**
   * Drops the lines `from` has in the batch: a read that failed halfway must
   * not send its lines later, under whoever flushes next.
   */
  discardBatch(from: Session): void {
    if (this.#batchFrom !== from) return;
    this.#batchFrom = null;
    this.#batchRoom = null;
    this.#clearBatch();
  }

  /** A session's connection ended and it left every room: forget it. */
  detach(session: Session, reason: string): void {
    if (!this.directory.remove(session)) return;
    this.#behind.delete(session);
    this.log.event({ event: "leave", peer: session, reason });
    if (this.directory.size === 0) this.#allClosed?.resolve();
  }

  // What the operator can do.

  /**
   * The operator says `text` to one room, or (no room) to everyone: `<server>
   * text`. Returns how many people it reached, or undefined when there is no
   * such room.
   */
  say(text: string, room?: RoomName): number | undefined {
    const clean = sanitizeText(text);
    const time = Date.now();
    if (room !== undefined) {
      const target = this.findRoom(room);
      if (target === undefined) return undefined;
      target.broadcast({ type: "broadcast", room: target.name, text: clean });
      this.store.append({ room: target.name, time, from: "server", kind: "notice", text: clean });
      this.bus?.publish({ type: "notice", room: target, text: clean, time });
      this.log.event({ event: "broadcast", room: target.name, text: clean });
      return target.size;
    }
    this.tellEveryone({ type: "broadcast", room: null, text: clean });
    for (const target of this.#rooms.values()) {
      // Rooms with nobody here are known from other nodes only: theirs to keep.
      if (target.members.size > 0) {
        this.store.append({ room: target.name, time, from: "server", kind: "notice", text: clean });
      }
    }
    this.bus?.publish({ type: "broadcast", text: clean });
    this.log.event({ event: "broadcast", room: null, text: clean });
    return this.directory.size + this.remote.size;
  }

  /**
   * Sends `event` to everyone connected here, whatever room (or none) they are
   * in, encoded once per wire format.
   */
  tellEveryone(event: RoomEvent | { readonly type: "info"; readonly text: string }): void {
    const encoded = new Map<unknown, unknown>();
    for (const session of this.directory.entries()) {
      if (event.type === "info") {
        session.deliver(event);
        continue;
      }
      const format = session.peer.format;
      let bytes = encoded.get(format);
      if (bytes === undefined) encoded.set(format, bytes = format.encodeEvent(event));
      if (bytes !== null) session.peer.send(bytes);
    }
  }

  /**
   * The operator says `text` to one person (here or on another node): `*server*
   * text`. Undefined when there is nobody by that name.
   */
  whisper(target: string, text: string): Session | RemotePerson | undefined {
    const to = this.findPerson(target);
    if (to === undefined) return undefined;
    const clean = sanitizeText(text);
    if (!(to instanceof Session)) {
      const time = Date.now();
      this.bus?.publish({ type: "private", from: null, to, text: clean, action: false, time });
      this.log.event({ event: "private", from: null, to, text: clean });
      return to;
    }
    to.deliver({
      type: "private",
      from: null,
      to: whoOf(to),
      text: clean,
      action: false,
      echo: false,
      time: Date.now(),
    });
    this.log.event({ event: "private", from: null, to, text: clean });
    return to;
  }

  /**
   * Disconnects one person (here, or on another node by asking it), telling
   * them why. Undefined when there is nobody by that name.
   */
  kick(target: string, reason = ""): Session | RemotePerson | undefined {
    const session = this.findPerson(target);
    if (session === undefined) return undefined;
    const clean = sanitizeText(reason);
    if (!(session instanceof Session)) {
      this.bus?.publish({ type: "kick", target: session, reason: clean });
      this.log.event({ event: "kick", peer: session, reason: clean });
      return session;
    }
    session.deliver({
      type: "closing",
      reason: "kicked",
      text: clean === "" ? "you were kicked by the operator" : `you were kicked: ${clean}`,
    });
    this.log.event({ event: "kick", peer: session, reason: clean });
    session.disconnect(clean === "" ? "kicked" : `kicked: ${clean}`);
    return session;
  }

  /**
   * Bans a name, an address or a network (`mask`; `#7` or `7`: the name of
   * client #7) for `durationMs` (none: until lifted), and removes whoever the
   * ban covers, telling them why. Banning the name of someone here bans their
   * address too. Returns the bans made and who was removed, or why `mask`
   * cannot be banned.
   */
  ban(
    mask: string,
    options: { durationMs?: number; reason?: string } = {},
  ): { bans: Ban[]; removed: Session[] } | string {
    const byId = /^#?\d+$/.test(mask) ? this.directory.find(mask) : undefined;
    const target = byId !== undefined
      ? { kind: "name" as const, mask: byId.name }
      : parseBanMask(mask);
    if (typeof target === "string") return target;
    const how = { durationMs: options.durationMs, reason: sanitizeText(options.reason ?? "") };
    const bans = [this.bans.add(target, how)];
    if (target.kind === "name") {
      const host = hostOf(this.directory.find(target.mask)?.address ?? "");
      const address = host === null ? null : parseBanMask(host);
      if (address !== null && typeof address !== "string" && this.bans.forAddress(host!) === null) {
        bans.push(this.bans.add(address, how));
      }
    }
    for (const ban of bans) {
      this.log.event({
        event: "ban",
        mask: ban.mask,
        kind: ban.kind,
        reason: ban.reason,
        until: ban.until,
      });
    }
    const removed: Session[] = [];
    for (const session of [...this.directory.entries()]) {
      const ban = this.bannedSession(session);
      if (ban === null || session.leaving !== null) continue;
      session.deliver({ type: "closing", reason: "banned", text: bannedText(ban) });
      session.disconnect(ban.reason === "" ? "banned" : `banned: ${ban.reason}`);
      removed.push(session);
    }
    return { bans, removed };
  }

  /** Lifts the ban on `mask`; returns it, or null when there was none. */
  unban(mask: string): Ban | null {
    const ban = this.bans.remove(mask);
    if (ban !== null) this.log.event({ event: "unban", mask: ban.mask });
    return ban;
  }

  /** The ban that covers a connected person (by name or address), or null. */
  bannedSession(session: Session): Ban | null {
    const host = hostOf(session.address);
    return this.bans.forName(session.name) ?? (host === null ? null : this.bans.forAddress(host));
  }

  /**
   * Tells everyone `* <reason>` and ends every connection (each writes what is
   * queued first); settles when every session has closed.
   */
  async shutdown(reason: string): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      clearInterval(this.#idleTimer);
      // Readers waiting for someone who is behind must not hold up the end.
      for (const session of [...this.#behind.keys()]) session.setBehind(false);
      for (const session of this.directory.entries()) session.setHolding(false);
      for (const session of [...this.directory.entries()]) {
        session.deliver({ type: "closing", reason: "shutdown", text: reason });
        session.disconnect("server shutting down");
      }
    }
    if (this.directory.size > 0) {
      this.#allClosed ??= Promise.withResolvers();
      await this.#allClosed.promise;
    }
    await this.store.flush();
    await this.bus?.close();
  }

  // Flow control.

  /**
   * A session fell behind or caught up, for any cause. One that stays behind
   * without progress is disconnected, so it cannot hold anyone for long.
   */
  behindChanged(session: Session, behind: boolean): void {
    if (behind) {
      if (this.closing) return;
      this.#behind.set(session, { since: performance.now(), written: session.peer.written });
      if (this.#slowTimer === undefined) {
        const every = Math.max(10, Math.min(100, this.options.slowTimeout / 4));
        this.#slowTimer = setInterval(() => this.#dropSlow(), every);
      }
    } else if (this.#behind.delete(session) && this.#behind.size === 0) {
      clearInterval(this.#slowTimer);
      this.#slowTimer = undefined;
    }
  }

  /**
   * Disconnects sessions that are behind and caught up too little in their last
   * window. Progress, not time alone, is the test: when many peers share a
   * bottleneck (one machine reading them all, the server's own CPU), each
   * drains slowly but steadily and must not be dropped; one that stopped
   * reading, or trickles a byte now and then to hold the room, is.
   */
  #dropSlow(): void {
    const now = performance.now();
    for (const [session, window] of this.#behind) {
      if (now - window.since < this.options.slowTimeout) continue;
      const written = session.peer.written;
      if (written - window.written < this.options.minProgress) {
        this.#behind.delete(session);
        session.setBehind(false);
        session.setHolding(false);
        session.leaving ??= "too slow";
        session.peer.disconnect("too slow", true);
      } else {
        window.since = now;
        window.written = written;
      }
    }
    if (this.#behind.size === 0) {
      clearInterval(this.#slowTimer);
      this.#slowTimer = undefined;
    }
  }

  /** Disconnects everyone idle for longer than the idle timeout. */
  #sweepIdle(): void {
    const timeout = this.options.idleTimeout;
    const oldest = performance.now() - timeout;
    for (const session of this.directory.entries()) {
      if (session.lastActive < oldest && session.leaving === null) {
        session.deliver({
          type: "closing",
          reason: "timeout",
          text: `idle for ${timeout / 1000} s: disconnecting`,
        });
        session.disconnect("timed out");
      }
    }
  }
}

const decoder = new TextDecoder();

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`Invalid ${name} "${value}": must be a number of at least 0`);
  }
  return value;
}
