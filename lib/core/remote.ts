/**
 * People on other nodes of a cluster, as this node knows them, and what the
 * bus hands in from those nodes. Everything here fans out to the people of
 * this node only: what another node said is never published again.
 *
 * Remote people are kept apart from the directory of sessions (which only
 * this node's transports and timers walk) but count everywhere people are
 * counted or named: a room's size, `/who`, `/whois`, `/msg`, the names nobody
 * else may take. They are never fan-out targets.
 *
 * @module
 */

import type { ChatCore } from "./chat.ts";
import type { PeerInfo } from "./events.ts";
import type { MemberInfo, RoomName, Who } from "./messages.ts";
import { checkRoomName, nameKey, roomKey } from "./names.ts";
import type { SaidBatch } from "./peer.ts";
import type { Room } from "./room.ts";

/** What a node says of one of its people: enough to list, name and reach them. */
export interface RemoteState {
  readonly id: number;
  readonly name: string;
  /** The node they are connected to. */
  readonly node: string;
  /** How they are connected there: `line`, `irc`, `web`. */
  readonly transport: string;
  /** When they connected, in milliseconds since the epoch. */
  readonly since: number;
  /** Their away message; null while present. */
  readonly away: string | null;
  /** The rooms they are in. */
  readonly rooms: readonly RoomName[];
}

/** Someone connected to another node. */
export class RemotePerson implements Who, PeerInfo {
  /** Unique in the cluster. */
  readonly id: number;
  /** Unique in the cluster by name key. */
  name: string;
  /** The node they are connected to. */
  readonly node: string;
  readonly transport: string;
  /** When they connected, in milliseconds since the epoch. */
  readonly connectedAt: number;
  away: string | null;
  /** The rooms they are in, as rooms of this node. */
  readonly rooms: Room[] = [];
  /** `performance.now()` when this node last saw them say or do something. */
  lastActive: number = performance.now();

  /** A person as their node described them (rooms are filled in by {@linkcode Remote}). */
  constructor(state: RemoteState) {
    this.id = state.id;
    this.name = state.name;
    this.node = state.node;
    this.transport = state.transport;
    this.connectedAt = state.since;
    this.away = state.away;
  }

  /** Where they are, for the console: the node's name. */
  get address(): string {
    return this.node;
  }

  /** When they connected. */
  get since(): Date {
    return new Date(this.connectedAt);
  }

  /** What `/who` shows of them. */
  memberInfo(): MemberInfo {
    return this.away === null
      ? { id: this.id, name: this.name, transport: this.transport }
      : { id: this.id, name: this.name, transport: this.transport, away: this.away };
  }
}

/**
 * The people on other nodes, and the entry points a bus delivers through.
 * Bookkeeping (who is where, under which name) and what people here are shown
 * are separate calls, because a cluster may learn them by separate paths; each
 * call is idempotent where a resync can repeat it.
 *
 * @example What a cluster's bus does when another node says bea is in #lobby
 * ```ts
 * import { ChatCore } from "./chat.ts";
 * import { RemotePerson } from "./remote.ts";
 * import assert from "node:assert/strict";
 *
 * const core = new ChatCore({ relay: true });
 * core.remote.upsert({
 *   id: 1001, name: "bea", node: "b", transport: "line", since: 0, away: null, rooms: ["#lobby"],
 * });
 * const bea = core.findPerson("BEA");
 * assert.ok(bea instanceof RemotePerson && bea.node === "b");
 * assert.equal(core.findRoom("#lobby")?.size, 1); // counted, never sent to
 * core.remote.quit(1001, "connection lost");
 * assert.equal(core.findRoom("#lobby"), undefined);
 * ```
 */
export class Remote {
  readonly #core: ChatCore;
  readonly #byId = new Map<number, RemotePerson>();
  readonly #byKey = new Map<string, RemotePerson>();

  /** The remote side of `core`; made by the core itself. */
  constructor(core: ChatCore) {
    this.#core = core;
  }

  /** How many people are on other nodes. */
  get size(): number {
    return this.#byId.size;
  }

  /** The person with this name (any case, or a look-alike) or id (`7`, `#7`). */
  find(target: string): RemotePerson | undefined {
    const id = /^#?(\d{1,15})$/.exec(target);
    if (id !== null) return this.#byId.get(Number(id[1]));
    return this.#byKey.get(nameKey(target));
  }

  /** The person with this id. */
  get(id: number): RemotePerson | undefined {
    return this.#byId.get(id);
  }

  /** Whether someone on another node holds the name with this key. */
  holds(key: string): boolean {
    return this.#byKey.has(key);
  }

  /** Everyone on other nodes, in the order this node learnt of them. */
  people(): IterableIterator<RemotePerson> {
    return this.#byId.values();
  }

  // Bookkeeping: who is where. These show nothing to the people here but what
  // the operator's log says, unless a method says otherwise.

  /**
   * Adds someone, or brings what is known of them up to date (name, away,
   * rooms), silently: their node told the whole story again (at start, or
   * after an outage).
   */
  upsert(state: RemoteState): RemotePerson {
    let person = this.#byId.get(state.id);
    if (person === undefined) {
      person = new RemotePerson(state);
      this.#byId.set(person.id, person);
      this.#byKey.set(nameKey(person.name), person);
    } else if (person.name !== state.name) {
      this.#rename(person, state.name);
    }
    person.away = state.away;
    const wanted = new Set(state.rooms.map(roomKey));
    for (const room of [...person.rooms]) {
      if (!wanted.has(roomKey(room.name))) this.#leave(person, room);
    }
    for (const name of state.rooms) this.#enter(person, name);
    return person;
  }

  /** Someone on another node connected. */
  connected(state: RemoteState): void {
    const known = this.#byId.has(state.id);
    const person = this.upsert(state);
    if (!known) this.#core.log.event({ event: "connect", peer: person });
  }

  /** Someone on another node went into a room (what people here see comes with the room's lines). */
  joined(id: number, name: RoomName): void {
    const person = this.#byId.get(id);
    if (person === undefined || !this.#enter(person, name)) return;
    person.lastActive = performance.now();
    this.#core.log.event({ event: "join", peer: person, room: name });
  }

  /** Someone on another node left a room but not the server: people here in it are told. */
  parted(id: number, name: RoomName, how: { to?: RoomName; reason?: string } = {}): void {
    const person = this.#byId.get(id);
    const room = person?.rooms.find((r) => roomKey(r.name) === roomKey(name));
    if (person === undefined || room === undefined) return;
    person.lastActive = performance.now();
    const core = this.#core;
    if (room.size <= core.options.presenceLimit) {
      room.broadcast({ type: "part", room: room.name, who: whoOf(person), ...how });
    }
    this.#leave(person, room);
    core.log.event({ event: "part", peer: person, room: room.name, ...how });
  }

  /** Someone on another node left the server: who shared a room with them here is told once. */
  quit(id: number, reason: string): void {
    const person = this.#byId.get(id);
    if (person === undefined) return;
    const core = this.#core;
    const rooms = [...person.rooms];
    core.tellCoMembers(rooms, { type: "quit", who: whoOf(person), reason });
    this.#forget(person);
    for (const room of rooms) core.dropIfEmpty(room);
    core.log.event({ event: "leave", peer: person, reason });
  }

  /** Every person of a node that is gone, as if each had quit for `reason`. */
  removeNode(node: string, reason: string): number {
    let count = 0;
    for (const person of [...this.#byId.values()]) {
      if (person.node !== node) continue;
      this.quit(person.id, reason);
      count++;
    }
    return count;
  }

  /** Forgets everyone of `node` not in `ids` (their node listed everyone it has). */
  keepOnly(node: string, ids: ReadonlySet<number>, reason: string): void {
    for (const person of [...this.#byId.values()]) {
      if (person.node === node && !ids.has(person.id)) this.quit(person.id, reason);
    }
  }

  /** Someone on another node took a new name: who shares a room with them here is told once. */
  renamed(id: number, name: string): void {
    const person = this.#byId.get(id);
    if (person === undefined || person.name === name) return;
    const from = person.name;
    this.#rename(person, name);
    person.lastActive = performance.now();
    const core = this.#core;
    core.tellCoMembers(person.rooms, { type: "nick", who: whoOf(person), from });
    core.log.event({ event: "nick", peer: person, from });
  }

  /** Someone on another node is away (text) or back (null). */
  away(id: number, text: string | null): void {
    const person = this.#byId.get(id);
    if (person !== undefined) person.away = text;
  }

  /** A topic was set on another node: kept, and people here in the room are told. */
  topic(name: RoomName, topic: string, by: string, time: number, from: string): void {
    if (checkRoomName(name) !== null) return;
    const core = this.#core;
    core.rememberTopic(name, topic, by, time);
    const room = core.findRoom(name);
    if (room !== undefined) {
      room.broadcast({ type: "topic", room: room.name, topic, by: by === "server" ? null : by });
    }
    const peer = this.find(by);
    core.log.event({ event: "topic", peer: peer ?? stranger(0, by, from), room: name, topic });
  }

  // What people here are shown: lines and notices from other nodes, for the
  // rooms people here are in.

  /**
   * Lines someone on another node said in `room`: to every member here but
   * those who ignore them, encoded once per wire format; kept in the history
   * this node keeps, and logged.
   */
  lines(room: Room, from: Who, node: string, batch: SaidBatch): void {
    const core = this.#core;
    const person = this.#byId.get(from.id);
    // The name the line was said under, even when a rename overtook it.
    const sender: Who & PeerInfo = person !== undefined && person.name === from.name
      ? person
      : stranger(from.id, from.name, node);
    if (person !== undefined) person.lastActive = performance.now();
    room.relay(sender, batch);
    const text = batch.text.bytes;
    for (let i = 0; i < batch.count; i++) {
      const start = batch.start(i);
      const end = batch.ends[i];
      core.store.append({
        room: room.name,
        time: batch.time,
        from: sender.name,
        kind: batch.kind,
        text: decoder.decode(text.subarray(start, end)),
      });
      if (batch.kind === "action") {
        const action = decoder.decode(text.subarray(start, end));
        core.log.event({ event: "action", peer: sender, room: room.name, text: action });
      } else core.log.message(room.name, sender, text, start, end);
    }
  }

  /** Someone on another node came into `room`: its members here are told (up to the presence limit). */
  joinNotice(room: Room, who: Who, from?: RoomName): void {
    if (room.size > this.#core.options.presenceLimit) return;
    room.broadcast({
      type: "join",
      room: room.name,
      who: { id: who.id, name: who.name },
      ...(from === undefined ? {} : { from }),
    });
  }

  /** Another node's operator said `text` to `room`: `<server> text`, kept in the history. */
  notice(room: Room, text: string, time: number, node: string): void {
    const core = this.#core;
    room.broadcast({ type: "broadcast", room: room.name, text });
    core.store.append({ room: room.name, time, from: "server", kind: "notice", text });
    core.log.event({ event: "broadcast", room: `${room.name} (from ${node})`, text });
  }

  /** Another node's operator said `text` to everyone in the cluster. */
  broadcast(text: string, node: string): void {
    const core = this.#core;
    core.tellEveryone({ type: "broadcast", room: null, text });
    const time = Date.now();
    for (const room of core.rooms()) {
      if (room.members.size === 0) continue;
      core.store.append({ room: room.name, time, from: "server", kind: "notice", text });
    }
    core.log.event({ event: "broadcast", room: `everyone (from ${node})`, text });
  }

  /**
   * A private message from someone on another node (or its operator: `from`
   * null) for the person here with id `to`. False when nobody here has that id.
   */
  private(
    message: {
      from: Who | null;
      node: string;
      to: number;
      text: string;
      action: boolean;
      time: number;
      notice?: boolean;
    },
  ): boolean {
    const core = this.#core;
    const to = core.directory.get(message.to);
    if (to === undefined) return false;
    const { from, text, action, time } = message;
    if (from === null || !to.ignores(from)) {
      const kind = message.notice ? { notice: true } : {};
      to.deliver({
        type: "private",
        from,
        to: whoOf(to),
        text,
        action,
        echo: false,
        time,
        ...kind,
      });
    }
    const sender = from === null
      ? null
      : this.#byId.get(from.id) ?? stranger(from.id, from.name, message.node);
    core.log.event({ event: "private", from: sender, to, text });
    return true;
  }

  /** Another node's operator disconnects the person here with id `id`. */
  kick(id: number, reason: string): boolean {
    return this.#core.kick(`#${id}`, reason) !== undefined;
  }

  /** A note (`* text`) for every person here: the cluster is degraded, or back. */
  tell(text: string): void {
    this.#core.tellEveryone({ type: "info", text });
  }

  /** A note for every person here in `room`. */
  tellRoom(name: RoomName, text: string): void {
    const room = this.#core.findRoom(name);
    if (room === undefined) return;
    for (const member of room.members) member.info(text);
  }

  #enter(person: RemotePerson, name: RoomName): boolean {
    if (checkRoomName(name) !== null) return false;
    const key = roomKey(name);
    if (person.rooms.some((room) => roomKey(room.name) === key)) return false;
    const core = this.#core;
    const room = core.findRoom(name) ?? core.createRoom(name);
    room.remote.add(person);
    person.rooms.push(room);
    return true;
  }

  #leave(person: RemotePerson, room: Room): void {
    room.remote.delete(person);
    const at = person.rooms.indexOf(room);
    if (at >= 0) person.rooms.splice(at, 1);
    this.#core.dropIfEmpty(room);
  }

  #rename(person: RemotePerson, name: string): void {
    const old = nameKey(person.name);
    if (this.#byKey.get(old) === person) this.#byKey.delete(old);
    person.name = name;
    this.#byKey.set(nameKey(name), person);
  }

  #forget(person: RemotePerson): void {
    for (const room of person.rooms) room.remote.delete(person);
    person.rooms.length = 0;
    this.#byId.delete(person.id);
    const key = nameKey(person.name);
    if (this.#byKey.get(key) === person) this.#byKey.delete(key);
  }
}

const decoder = new TextDecoder();

/** What the console needs of someone on another node this node does not know (yet). */
function stranger(id: number, name: string, node: string): Who & PeerInfo {
  return { id, name, node, address: node, since: new Date(0), transport: "remote" };
}

function whoOf(who: Who): Who {
  return { id: who.id, name: who.name };
}
