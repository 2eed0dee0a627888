/**
 * A room: its members, its topic, its fan-out and its flow control.
 *
 * Fan-out never waits for a member: each member's peer has its own bounded
 * queue. What a room shares is encoded once per wire format present and the
 * same buffer goes to every member that speaks it. A member that falls behind
 * holds this room's senders only (see {@linkcode Room.held}), never the server.
 *
 * @module
 */

import type { RoomEvent, RoomName, Who } from "./messages.ts";
import type { SaidBatch, WireFormat } from "./peer.ts";
import type { RemotePerson } from "./remote.ts";
import type { Session } from "./session.ts";
import { release } from "../wire/shared_bytes.ts";

/**
 * One room. Members are kept twice: in join order (for `/who`) and grouped by
 * wire format, so a fan-out encodes once per format and then walks each group.
 */
export class Room {
  /** The name as it was first written (`#Dev`); unique ignoring case. */
  readonly name: RoomName;
  /** Empty when none is set. */
  topic = "";
  /** Who set the topic, and when (milliseconds since the epoch). */
  topicBy = "";
  topicTime = 0;
  /** When the room was made, in milliseconds since the epoch. */
  readonly created: number = Date.now();
  /**
   * Members who may lock the topic and name other operators (IRC's channel
   * operators, `@`): whoever made the room, and whom an operator named. Line
   * clients cannot change these, but they are bound by them.
   */
  readonly operators: Set<Session> = new Set();
  /** Members an operator marked (IRC's voice, `+`): a mark, with no power here. */
  readonly voiced: Set<Session> = new Set();
  /** Only operators may change the topic (IRC's `+t`). */
  topicLocked = false;
  /** Listed (in `/rooms`, `/who`, `/whois`) only to its members (IRC's `+s`). */
  secret = false;
  /** Members connected here, in the order they came: the fan-out's targets. */
  readonly members: Set<Session> = new Set();
  /**
   * Members connected to other nodes of a cluster: counted and listed, never
   * sent to (their own node does that). Changed by `Remote` only.
   */
  readonly remote: Set<RemotePerson> = new Set();
  /** Members by the wire format their peer speaks. */
  readonly #groups = new Map<WireFormat, Set<Session>>();
  /** Members over their mark on room lines: while any is, heavy senders here wait. */
  #behind = 0;
  /** Settles when `#behind` is back to 0; null while nobody is behind. */
  #held: PromiseWithResolvers<void> | null = null;
  /** Settles when the cluster lets this room's senders go on; null while it does. */
  #paused: PromiseWithResolvers<void> | null = null;

  /** An empty room. */
  constructor(name: RoomName) {
    this.name = name;
  }

  /** How many people are in the room, here and on other nodes. */
  get size(): number {
    return this.members.size + this.remote.size;
  }

  /**
   * Undefined while every member keeps up; otherwise a promise that settles
   * when none is behind on room lines. A heavy sender here waits for it before
   * reading on, so heavy traffic slows to the slowest live reader and nothing
   * is lost; a member that stops reading is dropped by the core's slow-peer
   * rule, which ends the wait. Light senders do not wait (see `Session.flush`).
   */
  get held(): Promise<void> | undefined {
    return this.#held?.promise;
  }

  /**
   * Undefined unless, in a cluster, another node reads this room too far
   * behind: then a promise that settles when it has caught up. Senders here
   * wait for it as for {@linkcode held}; what this node relays from other
   * nodes does not (it must go on reading, or two nodes would wait for each other).
   */
  get paused(): Promise<void> | undefined {
    return this.#paused?.promise;
  }

  /** Makes this room's senders here wait (true), or lets them go on (false). */
  pause(on: boolean): void {
    if (on) {
      this.#paused ??= Promise.withResolvers();
    } else {
      const paused = this.#paused;
      this.#paused = null;
      paused?.resolve();
    }
  }

  /** Adds a member (already marked behind or not). */
  add(member: Session): void {
    if (this.members.has(member)) return;
    this.members.add(member);
    this.#group(member.peer.format).add(member);
    if (member.holding) this.memberBehind(true);
  }

  /** Removes a member; false when it was not one. */
  remove(member: Session): boolean {
    if (!this.members.delete(member)) return false;
    this.operators.delete(member);
    this.voiced.delete(member);
    this.#ungroup(member, member.peer.format);
    if (member.holding) this.memberBehind(false);
    return true;
  }

  /** A member's peer switched wire format (a line client asking for JSON). */
  reformat(member: Session, from: WireFormat): void {
    if (!this.members.has(member)) return;
    this.#ungroup(member, from);
    this.#group(member.peer.format).add(member);
  }

  /** A member fell behind on room lines (true) or caught up (false). */
  memberBehind(behind: boolean): void {
    if (behind) {
      if (this.#behind++ === 0) this.#held = Promise.withResolvers();
    } else if (--this.#behind === 0) {
      const held = this.#held;
      this.#held = null;
      held?.resolve();
    }
  }

  /**
   * Relays lines `from` said here to every other member but those ignoring
   * them, encoded once per wire format. Never waits.
   */
  publish(from: Session, batch: SaidBatch): void {
    const echo = from.peer.echoes(batch.kind);
    for (const [format, group] of this.#groups) {
      // The sender alone in its group, and not to be echoed: nobody to encode for.
      if (group.size === 1 && !echo && group.has(from)) continue;
      const encoded = format.encodeLines(this.name, from, batch);
      for (const member of group) {
        if (member === from ? !echo : member.ignores(from)) continue;
        if (member.replaying !== null && member.hold(this, encoded)) continue;
        member.peer.send(encoded);
      }
      release(encoded); // the peers that queued it hold it now
    }
  }

  /**
   * Relays lines someone on another node said here to every member but those
   * ignoring them, encoded once per wire format. Never waits.
   */
  relay(from: Who, batch: SaidBatch): void {
    for (const [format, group] of this.#groups) {
      const encoded = format.encodeLines(this.name, from, batch);
      for (const member of group) {
        if (member.ignores(from)) continue;
        if (member.replaying !== null && member.hold(this, encoded)) continue;
        member.peer.send(encoded);
      }
      release(encoded);
    }
  }

  /** Sends an event to every member but `except`, encoded once per wire format. */
  broadcast(event: RoomEvent, except?: Session): void {
    for (const [format, group] of this.#groups) {
      if (group.size === 1 && except !== undefined && group.has(except)) continue;
      const encoded = format.encodeEvent(event);
      if (encoded === null) continue;
      for (const member of group) {
        if (member === except) continue;
        if (member.replaying !== null && member.hold(this, encoded)) continue;
        member.peer.send(encoded);
      }
    }
  }

  #group(format: WireFormat): Set<Session> {
    let group = this.#groups.get(format);
    if (group === undefined) this.#groups.set(format, group = new Set());
    return group;
  }

  #ungroup(member: Session, format: WireFormat): void {
    const group = this.#groups.get(format);
    if (group === undefined) return;
    group.delete(member);
    if (group.size === 0) this.#groups.delete(format);
  }
}
