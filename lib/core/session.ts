/**
 * One connected person, from attach to close: their name, rooms, away state
 * and ignore list, the lines they say (the relay's hot path) and the commands
 * they run. A session knows its connection only as a {@linkcode Peer}.
 *
 * @module
 */

import type { ChatCore } from "./chat.ts";
import { helpLines, MAX_HISTORY } from "./commands.ts";
import type { PeerInfo } from "./events.ts";
import type {
  ChatEvent,
  Command,
  ErrorCode,
  HistoryLine,
  LineKind,
  MemberInfo,
  RoomName,
  Who,
} from "./messages.ts";
import { checkName, checkRoomName, roomKey } from "./names.ts";
import type { Peer } from "./peer.ts";
import type { RemotePerson } from "./remote.ts";
import type { Room } from "./room.ts";
import { ByteBudget, TokenBucket } from "./token_bucket.ts";
import { release, retain } from "../wire/shared_bytes.ts";
import { ByteBuilder, sanitizeText } from "../wire/text.ts";

/** Most names listed when you join a room; `/who` lists up to ten times more. */
export const LISTED_NAMES = 20;
/** Most rooms a multi-room peer (IRC, web) may be in at once. */
export const MAX_ROOMS_PER_PEER = 50;
/** Longest topic, in characters. */
export const MAX_TOPIC = 300;
/**
 * Rooms one person may make (join while nobody is in them): 50 at once, then
 * one a second. Anyone may make a room, and an empty room's history and topic
 * stay: 16 clients making rooms as fast as the server took their commands
 * made 5,500 a second here, and the collections of what they left behind held
 * everyone's lines up to 0.3 s (`deno task stress --only room-flood`). Joining
 * a room someone is in, or the default room, is not limited.
 */
export const NEW_ROOMS = { perSecond: 1, burst: 50 } as const;
/** Most rooms `/rooms` lists. */
const LISTED_ROOMS = 200;
/**
 * Most bytes of text one history reply holds (the newest lines that fit; at
 * least one): a 12-byte `/history 1000` must not become megabytes of reply,
 * nor a `/join` the replay of a room of long lines.
 */
export const MAX_HISTORY_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SPACE = 0x20;
const TAB = 0x09;

/** Scratch space for a line that is not relayed (operator mode). */
const scratch = new ByteBuilder(1024);

/** A history replay under way into one room: the room's lines held until it ends. */
export interface Replay {
  /** Encoded lines of the room that arrived meanwhile, in order. */
  readonly held: unknown[];
  /**
   * What to do once it ended: a `/history` asked meanwhile runs then, so that
   * its answer includes what was held rather than repeating it.
   */
  readonly after: (() => void)[];
}

/** A connected person. */
export class Session implements Who, PeerInfo {
  /** Unique for the life of the server (or cluster). */
  readonly id: number;
  /** Unique by name key; changed through the directory only. */
  name: string;
  /** The connection, as the core knows it. */
  readonly peer: Peer;
  readonly #core: ChatCore;
  /** When the person connected, in milliseconds since the epoch. */
  readonly connectedAt: number = Date.now();
  /**
   * `performance.now()` at the last complete line: what the idle timeout
   * measures (bytes that never make a line do not count as activity). The
   * transport sets it, from the time of the read that brought the line: one
   * clock call per read, not per line.
   */
  lastActive: number = performance.now();
  /** The rooms this person is in, in the order joined (a line client: at most one). */
  readonly rooms: Room[] = [];
  /** The away message, or null while present. */
  away: string | null = null;
  /** Ids of the people this one ignores; null for nobody (the common case). */
  ignoring: Set<number> | null = null;
  /** Set once leaving began (quit, kick, timeout): nothing more they send counts. */
  leaving: string | null = null;
  /**
   * True while the peer's send queue is over its mark, for any cause: this
   * person's own commands wait, so do those who message them, and the core
   * disconnects them if they stay behind without progress.
   */
  behind = false;
  /**
   * True while the peer is over its mark on room lines alone (what others
   * said, not replies or private messages): its rooms are held, so heavy
   * senders there wait for it (see {@linkcode Session.flush}).
   */
  holding = false;
  /**
   * Rooms whose history is being fetched, with the encoded lines that arrived
   * meanwhile; null while none is (always, with a synchronous store).
   */
  replaying: Map<Room, Replay> | null = null;
  /** Settles when this session is no longer behind. */
  #caughtUp: PromiseWithResolvers<void> | null = null;
  /** Rooms said something in since the last flush, and peers messaged: what a flush may wait for. */
  #saidIn: Room[] = [];
  #messaged: Session[] = [];
  /** Bytes said into rooms since the last flush. */
  #saidBytes = 0;
  /**
   * What this person may say without waiting for a room's slow reader; null
   * when everyone waits (`lightRate` 0). Made on the first line said.
   */
  #pace: ByteBudget | null = null;
  /** Rooms this person made: {@linkcode NEW_ROOMS}; made on the first. */
  #newRooms: ByteBudget | null = null;
  /** Flood control, when the server has a limit. */
  readonly #bucket: TokenBucket | null;
  /** Lines dropped in the current flood, reported when it ends. */
  #dropped = 0;
  /** Set once `closed()` ran. */
  #gone = false;

  /** A session for a peer the core attached; see `ChatCore.attach`. */
  constructor(core: ChatCore, peer: Peer, id: number) {
    this.#core = core;
    this.peer = peer;
    this.id = id;
    this.name = `user${id}`;
    const flood = core.options.flood;
    this.#bucket = flood > 0 ? new TokenBucket(flood, performance.now()) : null;
  }

  /** Remote address, as people write it. */
  get address(): string {
    return this.peer.address;
  }

  /** When the person connected. */
  get since(): Date {
    return new Date(this.connectedAt);
  }

  /** How they are connected: `line`, `tls`, `irc`, `web`. */
  get transport(): string {
    return this.peer.transport;
  }

  /** The room a line client is in (the first room of others); null when in none. */
  get room(): Room | null {
    return this.rooms[0] ?? null;
  }

  /** Whether this session hides what `from` says. */
  ignores(from: Who): boolean {
    return this.ignoring !== null && this.ignoring.has(from.id);
  }

  /** Tells this person something. */
  deliver(event: ChatEvent): void {
    this.peer.deliver(event);
  }

  /** A note for this person (`* text` on a line client). */
  info(text: string): void {
    this.peer.deliver({ type: "info", text });
  }

  /** An error for this person only. */
  error(code: ErrorCode, text: string): void {
    this.peer.deliver({ type: "error", code, text });
  }

  /** What `/who` shows of this person. */
  memberInfo(): MemberInfo {
    return this.away === null
      ? { id: this.id, name: this.name, transport: this.transport }
      : { id: this.id, name: this.name, transport: this.transport, away: this.away };
  }

  // The hot path. A transport hands each complete line to sayIn() and calls
  // flush() at the end of each read: the lines of a read go out as one batch.

  /**
   * A line `buf[start..end)` said in `room` (null: to the operator, when the
   * server is not a chat room). Blank lines are not relayed.
   */
  sayIn(room: Room | null, buf: Uint8Array, start: number, end: number, kind: LineKind): void {
    if (this.leaving !== null) return;
    if (isBlank(buf, start, end)) return;
    if (this.#bucket !== null && !this.#withinFloodLimit(this.#bucket)) return;
    const core = this.#core;
    if (room === null) {
      scratch.clear();
      scratch.appendSanitized(buf, start, end);
      if (kind === "action") {
        core.log.event({ event: "action", peer: this, room: null, text: decodeScratch() });
      } else core.log.message(null, this, scratch.bytes, 0, scratch.length);
      return;
    }
    const batch = core.batchFor(this, room, kind);
    const text = batch.text;
    const from = text.length;
    text.appendSanitized(buf, start, end);
    const to = text.length;
    this.#saidBytes += to - from;
    batch.endLine();
    // Other lines (an IRC NOTICE is a line like any other for the log) are
    // logged with their batch: see ChatCore.log.
    if (kind === "action") {
      const action = decoder.decode(text.bytes.subarray(from, to));
      core.log.event({ event: "action", peer: this, room: room.name, text: action });
    }
    if (!this.#saidIn.includes(room)) this.#saidIn.push(room);
  }

  /** A line said in this person's one room (line clients). */
  say(buf: Uint8Array, start: number, end: number): void {
    this.sayIn(this.#core.options.relay ? this.room : null, buf, start, end, "message");
  }

  /**
   * End of a read: relays what was said as one batch. Returns a promise when
   * the transport must wait before reading on: this person sends heavily into
   * a room that a member behind on its lines holds; a room said into is
   * paused (in a cluster) for a node that reads it too slowly; someone
   * messaged is behind; this person is behind (replies to their own commands
   * count against their own queue); or the operator's log asks to wait.
   *
   * Only heavy senders (over the core's `lightRate`) wait for a held room:
   * they are the ones filling the slow member's queue, and a stalled member
   * may take a while to be told from a slow one. People talking at a human
   * pace go on.
   */
  flush(): Promise<unknown> | undefined {
    const core = this.#core;
    core.flushBatch();
    // Called once per read: nothing is allocated unless there is something to wait for.
    let waits: Promise<unknown>[] | null = null;
    if (this.#saidIn.length > 0) {
      const heavy = !this.#light(this.#saidBytes);
      for (const room of this.#saidIn) {
        if (heavy) waits = waitFor(waits, room.held);
        waits = waitFor(waits, room.paused);
      }
      this.#saidIn.length = 0;
      this.#saidBytes = 0;
    }
    if (this.#messaged.length > 0) {
      for (const to of this.#messaged) waits = waitFor(waits, to.#caughtUp?.promise);
      this.#messaged.length = 0;
    }
    waits = waitFor(waits, this.#caughtUp?.promise);
    waits = waitFor(waits, core.log.ready());
    if (waits === null) return undefined;
    return waits.length === 1 ? waits[0] : Promise.all(waits);
  }

  /** Whether `bytes` just said keep this person within the light pace. */
  #light(bytes: number): boolean {
    const rate = this.#core.options.lightRate;
    if (rate === 0) return false;
    this.#pace ??= new ByteBudget(rate, 4 * rate, this.lastActive);
    return this.#pace.spend(performance.now(), bytes);
  }

  /**
   * The peer's queue went over its mark on room lines alone (true) or back
   * under half of it (false): its rooms are held while it is.
   */
  setHolding(holding: boolean): void {
    if (holding === this.holding) return;
    this.holding = holding;
    for (const room of this.rooms) room.memberBehind(holding);
  }

  /** Settles when this session is no longer behind (at once when it is not). */
  caughtUp(): Promise<void> {
    return this.#caughtUp?.promise ?? Promise.resolve();
  }

  /** The peer's queue went over its mark (true) or back under half of it (false), for any cause. */
  setBehind(behind: boolean): void {
    if (behind === this.behind) return;
    this.behind = behind;
    if (behind) {
      this.#caughtUp = Promise.withResolvers();
    } else {
      const caughtUp = this.#caughtUp;
      this.#caughtUp = null;
      caughtUp?.resolve();
    }
    this.#core.behindChanged(this, behind);
  }

  /** Keeps `encoded` for after a history replay into `room`; false when none is under way. */
  hold(room: Room, encoded: unknown): boolean {
    const replay = this.replaying?.get(room);
    if (replay === undefined) return false;
    retain(encoded); // until it is sent after the history
    replay.held.push(encoded);
    return true;
  }

  /**
   * Runs a command. Returns a promise when it finishes later (a name claimed in
   * a shared store): the transport then takes no more input until it settles,
   * so commands keep their order.
   */
  run(command: Command): void | Promise<void> {
    if (this.leaving !== null) return;
    this.#core.flushBatch();
    this.lastActive = performance.now();
    const relay = this.#core.options.relay;
    switch (command.type) {
      case "say":
      case "action": {
        const room = this.#target(command.room);
        if (room === undefined) return;
        const bytes = encoder.encode(command.text);
        this.sayIn(room, bytes, 0, bytes.length, command.type === "say" ? "message" : "action");
        this.#core.flushBatch();
        return;
      }
      case "msg":
        return this.#msg(command.to, command.text, command.action ?? false, command.notice);
      case "nick":
        return this.#nick(command.name);
      case "quit":
        this.deliver({ type: "closing", reason: "quit", text: "goodbye" });
        return this.disconnect(command.reason ? `quit: ${sanitizeText(command.reason)}` : "quit");
      case "help":
        for (const text of helpLines(relay)) this.info(text);
        return;
    }
    if (!relay) {
      return this.error("not_relay", `/${command.type} needs a chat room (server --relay)`);
    }
    switch (command.type) {
      case "join":
        return this.join(command.room);
      case "part":
        return this.#part(command.room, command.reason);
      case "rooms":
        return this.#rooms();
      case "who":
        return this.#who(command.room);
      case "whois":
        return this.#whois(command.name);
      case "topic":
        return this.#topic(command.room, command.text);
      case "away":
        return this.#away(command.text);
      case "ignore":
        return this.#ignore(command.name);
      case "unignore":
        return this.#unignore(command.name);
      case "history":
        return this.#history(command.room, command.count);
    }
  }

  /** Leaves the server: what is queued is written, then the connection closes. */
  disconnect(reason: string): void {
    if (this.leaving !== null) return;
    this.leaving = reason;
    this.peer.disconnect(reason);
  }

  /**
   * The connection ended (the transport calls this once, whatever the cause):
   * leave every room, tell who shared one, give up the name.
   */
  closed(reason: string): void {
    if (this.#gone) return;
    this.#gone = true;
    const core = this.#core;
    core.discardBatch(this);
    const why = this.leaving ?? reason;
    this.leaving ??= reason;
    if (this.behind) this.setBehind(false);
    if (this.holding) this.setHolding(false);
    const rooms = this.rooms.splice(0);
    for (const room of rooms) room.remove(this);
    if (!core.closing) {
      const names = rooms.map((room) => room.name);
      core.tellCoMembers(rooms, { type: "quit", who: whoOf(this), reason: why, rooms: names });
    }
    core.bus?.publish({ type: "quit", who: this, rooms, reason: why });
    for (const room of rooms) core.dropIfEmpty(room);
    core.detach(this, why);
  }

  /** Enters `name`: for a line client, leaving the room it was in. */
  join(name: RoomName): void {
    const problem = checkRoomName(name);
    if (problem !== null) return this.error("bad_room", problem);
    const core = this.#core;
    const existing = core.findRoom(name);
    if (existing !== undefined && this.rooms.includes(existing)) {
      return this.info(`you are already in ${existing.name}`);
    }
    if (!this.peer.singleRoom && this.rooms.length >= MAX_ROOMS_PER_PEER) {
      return this.error(
        "too_many_rooms",
        `you are in ${MAX_ROOMS_PER_PEER} rooms; /part one first`,
      );
    }
    // The default room is everyone's to come back to (a line client's /part),
    // as it is on connecting: it is never refused.
    if (existing === undefined && roomKey(name) !== roomKey(core.options.defaultRoom)) {
      const now = performance.now();
      const made = this.#newRooms ??= new ByteBudget(NEW_ROOMS.perSecond, NEW_ROOMS.burst, now);
      // A refused try costs nothing: whoever waits the time said gets in.
      const wait = made.debtTime(now);
      if (wait > 0) {
        return this.error(
          "too_many_rooms",
          `you are making rooms too fast; ${name} is new: try again in ${Math.ceil(wait / 1000)} s`,
        );
      }
      made.spend(now, 1);
    }
    const room = existing ?? core.createRoom(name);
    const old = this.peer.singleRoom ? this.room : null;
    if (old !== null) this.#leaveRoom(old, { to: room.name });
    this.enter(room, old?.name);
  }

  /** Puts this session into `room` and tells everyone concerned (no checks). */
  enter(room: Room, from?: RoomName): void {
    const core = this.#core;
    room.add(this);
    // Whoever makes a room is its first operator (IRC's channel creator).
    if (room.size === 1) room.operators.add(this);
    this.rooms.push(room);
    // Before the history is asked for: in a cluster, the bus starts following the room here.
    core.bus?.publish({ type: "join", room, who: this, ...(from === undefined ? {} : { from }) });
    core.log.event({ event: "join", peer: this, room: room.name });
    if (room.size <= core.options.presenceLimit) {
      room.broadcast({
        type: "join",
        room: room.name,
        who: whoOf(this),
        from,
        transport: this.transport,
        ...(this.away === null ? {} : { away: this.away }),
      }, this);
    }
    this.describe(room, from);
  }

  /** Tells this person they are in `room`: who else is, the topic, the history. */
  describe(room: Room, from?: RoomName): void {
    this.deliver({
      type: "joined",
      room: room.name,
      topic: room.topic,
      count: room.size,
      members: listMembers(room, LISTED_NAMES, this),
      ...(from === undefined ? {} : { from }),
    });
    this.#replay(room, this.#core.options.history);
  }

  /**
   * Sends the last `count` lines of `room` (or, when there are none, calls
   * `none`). When the store answers later, the room's live lines that arrive
   * meanwhile wait and follow the history, so nothing is missed, repeated
   * out of order or mixed into it.
   */
  #replay(room: Room, count: number, none?: () => void): void {
    if (count <= 0) return;
    const pending = this.replaying?.get(room);
    if (pending !== undefined) {
      pending.after.push(() => this.#replay(room, count, none));
      return;
    }
    const recent = this.#core.store.recent(room.name, count);
    if (!(recent instanceof Promise)) return this.#sendHistory(room, recent, none);
    const replay: Replay = { held: [], after: [] };
    (this.replaying ??= new Map()).set(room, replay);
    const end = (lines: HistoryLine[]) => this.#endReplay(room, replay, lines, none);
    recent.then(end, () => end([]));
  }

  #endReplay(room: Room, replay: Replay, lines: HistoryLine[], none?: () => void): void {
    // Gone, or left the room (and maybe came back: a new replay) meanwhile.
    if (this.#gone || this.replaying?.get(room) !== replay) return;
    this.replaying.delete(room);
    if (this.replaying.size === 0) this.replaying = null;
    this.#sendHistory(room, lines, none);
    for (const encoded of replay.held) {
      this.peer.send(encoded);
      release(encoded);
    }
    for (const next of replay.after) next();
  }

  #sendHistory(room: Room, lines: HistoryLine[], none?: () => void): void {
    if (lines.length === 0) return none?.();
    let from = lines.length - 1;
    for (let bytes = lines[from].text.length; from > 0; from--) {
      bytes += lines[from - 1].text.length;
      if (bytes > MAX_HISTORY_BYTES) break;
    }
    if (from > 0) {
      this.info(`${from} earlier lines of ${room.name} left out: a reply holds at most 64 KiB`);
    }
    this.deliver({
      type: "history",
      room: room.name,
      lines: from === 0 ? lines : lines.slice(from),
    });
  }

  /** Leaves `room`, telling its members; the room goes when it is empty. */
  #leaveRoom(room: Room, how: { to?: RoomName; reason?: string }): void {
    const core = this.#core;
    if (!room.remove(this)) return;
    this.rooms.splice(this.rooms.indexOf(room), 1);
    this.replaying?.delete(room);
    core.log.event({ event: "part", peer: this, room: room.name, ...how });
    if (room.size < core.options.presenceLimit) {
      room.broadcast({ type: "part", room: room.name, who: whoOf(this), ...how });
    }
    core.bus?.publish({ type: "part", room, who: this, ...how });
    core.dropIfEmpty(room);
  }

  /** The room a command names, or this person's room; undefined (after an error) when none. */
  #target(name: RoomName | undefined): Room | null | undefined {
    if (!this.#core.options.relay) return null;
    if (name === undefined) {
      const room = this.room;
      if (room === null) this.error("not_in_room", "you are in no room; /join one");
      return room ?? undefined;
    }
    const room = this.#core.findRoom(name);
    if (room === undefined || !this.rooms.includes(room)) {
      this.error("not_in_room", `you are not in ${name}; /join it first`);
      return undefined;
    }
    return room;
  }

  #part(name: RoomName | undefined, reason: string | undefined): void {
    const room = this.#target(name);
    if (!room) return;
    const core = this.#core;
    const clean = reason === undefined ? undefined : sanitizeText(reason);
    if (this.peer.singleRoom) {
      const lobby = core.options.defaultRoom;
      if (room.name.toLowerCase() === lobby.toLowerCase()) {
        return this.info(`you are in the default room, ${room.name}; /quit leaves the server`);
      }
      return this.join(lobby);
    }
    this.#leaveRoom(room, clean === undefined ? {} : { reason: clean });
    this.deliver(
      clean === undefined
        ? { type: "parted", room: room.name }
        : { type: "parted", room: room.name, reason: clean },
    );
  }

  #nick(name: string): void | Promise<void> {
    const problem = checkName(name, this.id);
    if (problem !== null) return this.error("bad_name", `${problem}; you are still ${this.name}`);
    if (this.#core.bans.forName(name) !== null) {
      return this.error("denied", `the name "${name}" is banned; you are still ${this.name}`);
    }
    const old = this.name;
    const result = this.#core.directory.rename(this, name);
    const done = (outcome: string) => {
      if (outcome === "taken") {
        return this.error("name_taken", `the name "${name}" is taken; you are still ${old}`);
      }
      if (outcome === "same") return this.info(`you are already ${name}`);
      if (outcome !== "renamed") return;
      this.renamed(old);
    };
    if (result instanceof Promise) return result.then(done);
    done(result);
  }

  /**
   * Tells this person, the people who share a room with them and (in a
   * cluster) the other nodes that they are no longer called `old`: after the
   * directory renamed them.
   */
  renamed(old: string): void {
    const core = this.#core;
    this.deliver({ type: "renamed", you: whoOf(this), from: old });
    core.log.event({ event: "nick", peer: this, from: old });
    const rooms = this.rooms.map((room) => room.name);
    core.tellCoMembers(this.rooms, { type: "nick", who: whoOf(this), from: old, rooms }, this);
    core.bus?.publish({ type: "nick", who: this, from: old });
  }

  #msg(target: string, text: string, action: boolean, notice = false): void {
    const core = this.#core;
    const clean = sanitizeText(text);
    const time = Date.now();
    if (target.toLowerCase() === "server") {
      core.log.event({ event: "private", from: this, to: null, text: clean });
      return this.deliver({
        type: "private",
        from: whoOf(this),
        to: null,
        text: clean,
        action,
        echo: true,
        time,
      });
    }
    if (!core.options.relay) {
      return this.error("not_relay", "here you can only /msg server (other people need --relay)");
    }
    const to = core.findPerson(target);
    if (to === undefined) return this.error("no_such_name", `nobody here is called "${target}"`);
    if (to === this) return this.error("usage", "that is you");
    const from = whoOf(this);
    const toWho = whoOf(to);
    if (!(to instanceof Session)) return this.#msgRemote(to, clean, action, time, notice);
    const kind = notice ? { notice } : {};
    if (!to.ignores(this)) {
      to.deliver({
        type: "private",
        from,
        to: toWho,
        text: clean,
        action,
        echo: false,
        time,
        ...kind,
      });
      if (to.behind) this.#messaged.push(to);
    }
    core.log.event({ event: "private", from: this, to, text: clean });
    this.deliver({
      type: "private",
      from,
      to: toWho,
      text: clean,
      action,
      echo: true,
      time,
      ...kind,
    });
    // Nothing answers a notice automatically (IRC's rule, so that bots never loop).
    if (to.away !== null && !notice) {
      this.deliver({ type: "away_is", who: toWho, text: to.away });
    }
  }

  /** A private message for someone on another node: their node delivers it. */
  #msgRemote(
    to: RemotePerson,
    text: string,
    action: boolean,
    time: number,
    notice: boolean,
  ): void {
    const core = this.#core;
    const bus = core.bus;
    if (bus === null || bus.degraded !== null) {
      const why = bus?.degraded ?? "this server is in no cluster";
      return this.error("unreachable", `cannot reach ${to.name} on ${to.node}: ${why}`);
    }
    const from = whoOf(this);
    const toWho = whoOf(to);
    const kind = notice ? { notice } : {};
    bus.publish({ type: "private", from, to, text, action, time, ...kind });
    core.log.event({ event: "private", from: this, to, text });
    this.deliver({ type: "private", from, to: toWho, text, action, echo: true, time, ...kind });
    if (to.away !== null && !notice) this.deliver({ type: "away_is", who: toWho, text: to.away });
  }

  #rooms(): void {
    const all = [...this.#core.rooms()].filter((room) => this.#sees(room));
    const rooms = all.slice(0, LISTED_ROOMS).map((room) => ({
      room: room.name,
      count: room.size,
      topic: room.topic,
    }));
    this.deliver({ type: "rooms", rooms, total: all.length });
    if (all.length > LISTED_ROOMS) this.info(`and ${all.length - LISTED_ROOMS} more rooms`);
  }

  #who(name: RoomName | undefined): void {
    const found = name === undefined ? this.room : this.#core.findRoom(name);
    const room = found === undefined || found === null || this.#sees(found) ? found : undefined;
    if (room === null) return this.error("not_in_room", "you are in no room; /who #room");
    if (room === undefined) return this.error("no_such_room", `there is no room ${name}`);
    this.deliver({
      type: "who",
      room: room.name,
      count: room.size,
      members: listMembers(room, LISTED_NAMES * 10),
    });
  }

  #whois(name: string): void {
    const who = this.#core.findPerson(name);
    if (who === undefined) return this.error("no_such_name", `nobody here is called "${name}"`);
    if (!(who instanceof Session)) {
      return this.deliver({
        type: "whois",
        who: whoOf(who),
        rooms: who.rooms.map((room) => room.name),
        transport: who.transport,
        since: who.connectedAt,
        idleSeconds: Math.floor((performance.now() - who.lastActive) / 1000),
        node: who.node,
        ...(who.away === null ? {} : { away: who.away }),
      });
    }
    this.deliver({
      type: "whois",
      who: whoOf(who),
      rooms: who.rooms.filter((room) => this.#sees(room)).map((room) => room.name),
      transport: who.transport,
      since: who.connectedAt,
      idleSeconds: Math.floor((performance.now() - who.lastActive) / 1000),
      ...(who.away === null ? {} : { away: who.away }),
      ...(who === this ? { address: who.address } : {}),
    });
  }

  #topic(name: RoomName | undefined, text: string | undefined): void {
    const room = this.#target(name);
    if (!room) return;
    if (text === undefined) {
      return this.deliver({ type: "topic_is", room: room.name, topic: room.topic });
    }
    if (room.topicLocked && !room.operators.has(this)) {
      return this.error("not_operator", `only the operators of ${room.name} may change its topic`);
    }
    const topic = sanitizeText(text).slice(0, MAX_TOPIC);
    this.#core.setTopic(room, topic, this);
  }

  #away(text: string | undefined): void {
    const clean = text === undefined ? "" : sanitizeText(text).slice(0, MAX_TOPIC);
    this.away = clean === "" ? null : clean;
    this.deliver(this.away === null ? { type: "away" } : { type: "away", text: this.away });
    this.#core.bus?.publish({ type: "away", who: this });
  }

  #ignore(name: string | undefined): void {
    if (name !== undefined) {
      const who = this.#core.findPerson(name);
      if (who === undefined) return this.error("no_such_name", `nobody here is called "${name}"`);
      if (who === this) return this.error("usage", "you cannot ignore yourself");
      (this.ignoring ??= new Set()).add(who.id);
    }
    this.deliver({ type: "ignoring", names: this.#ignoredNames() });
  }

  #unignore(name: string): void {
    const who = this.#core.findPerson(name);
    if (who === undefined || !this.ignoring?.delete(who.id)) {
      return this.error("no_such_name", `you are not ignoring "${name}"`);
    }
    if (this.ignoring.size === 0) this.ignoring = null;
    this.deliver({ type: "ignoring", names: this.#ignoredNames() });
  }

  /** Names of the ignored who are still here (someone who left is forgotten). */
  #ignoredNames(): string[] {
    const names: string[] = [];
    for (const id of this.ignoring ?? []) {
      const who = this.#core.directory.get(id) ?? this.#core.remote.get(id);
      if (who === undefined) this.ignoring!.delete(id);
      else names.push(who.name);
    }
    if (this.ignoring?.size === 0) this.ignoring = null;
    return names;
  }

  #history(name: RoomName | undefined, count: number | undefined): void {
    const room = this.#target(name);
    if (!room) return;
    const n = Math.min(count ?? (this.#core.options.history || 50), MAX_HISTORY);
    this.#replay(room, n, () => this.info(`no history in ${room.name}`));
  }

  /** Whether this person may see that `room` exists: it is not secret, or they are in it. */
  #sees(room: Room): boolean {
    return !room.secret || room.members.has(this);
  }

  /** Takes a token from the flood bucket; false when the line must be dropped. */
  #withinFloodLimit(bucket: TokenBucket): boolean {
    if (bucket.take(this.lastActive)) {
      if (this.#dropped > 0) {
        this.info(`${this.#dropped} lines were dropped by the flood limit`);
        this.#dropped = 0;
      }
      return true;
    }
    if (this.#dropped++ === 0) {
      this.error(
        "flood",
        `flood: over ${bucket.rate} lines per second; lines are dropped until you slow down`,
      );
      this.#core.log.event({ event: "error", peer: this, message: "flood limit reached" });
    }
    return false;
  }
}

/** `{ id, name }` of a session: what events carry (a copy, so a later rename does not change it). */
export function whoOf(session: Who): Who {
  return { id: session.id, name: session.name };
}

/**
 * The first `most` members of a room (but `except`), as `/who` shows them:
 * those here first, then those on other nodes.
 */
function listMembers(room: Room, most: number, except?: Session): MemberInfo[] {
  const members: MemberInfo[] = [];
  for (const member of room.members) {
    if (members.length === most) return members;
    if (member !== except) members.push(member.memberInfo());
  }
  for (const member of room.remote) {
    if (members.length === most) break;
    members.push(member.memberInfo());
  }
  return members;
}

/** True when `buf[start..end)` holds nothing but spaces and tabs. */
function isBlank(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b !== SPACE && b !== TAB) return false;
  }
  return true;
}

function decodeScratch(): string {
  return decoder.decode(scratch.bytes.subarray(0, scratch.length));
}

/** `waits` with `p` added, when there is a `p` (the list is made with its first promise). */
function waitFor(
  waits: Promise<unknown>[] | null,
  p: Promise<unknown> | undefined,
): Promise<unknown>[] | null {
  if (p === undefined) return waits;
  if (waits === null) return [p];
  waits.push(p);
  return waits;
}
