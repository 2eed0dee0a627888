/**
 * The transport seam: what the core needs of a connected person's connection
 * ({@linkcode Peer}) and of a wire format ({@linkcode WireFormat}). The line
 * protocol, IRC and the web each implement both; the core imports none of them.
 *
 * @module
 */

import type { ChatEvent, LineKind, RoomEvent, RoomName, Who } from "./messages.ts";
import { ByteBuilder } from "../wire/text.ts";

const LF = 0x0a;

/**
 * Lines one person said in one room during one read: the relay's hot path.
 * The text is sanitized UTF-8 in one buffer, so a wire format can frame every
 * line without decoding or allocating per line. One batch serves the whole
 * process: a read is handled from its first line to its flush without an await.
 */
export class SaidBatch {
  /**
   * Every line's text, each followed by a newline (`uno\ndos\n`): as the
   * history's queue to the database keeps them, so that is one copy.
   */
  readonly text: ByteBuilder = new ByteBuilder(64 * 1024);
  /**
   * Where each line's text ends in `text` (at its newline); line `i` is
   * `[start(i), ends[i])`.
   */
  readonly ends: number[] = [];
  /** Plain lines or `/me` actions. */
  kind: LineKind = "message";
  /** When the batch's lines were read, in milliseconds since the epoch. */
  time = 0;

  /** How many lines the batch holds. */
  get count(): number {
    return this.ends.length;
  }

  /** Where line `i` starts in `text`. */
  start(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1] + 1;
  }

  /** Ends the line appended to `text` since the last one (adds its newline). */
  endLine(): void {
    this.ends.push(this.text.length);
    this.text.appendByte(LF);
  }

  /** Empties the batch, keeping its storage. */
  clear(): void {
    this.text.clear();
    this.ends.length = 0;
    this.kind = "message";
  }
}

/**
 * How one wire format encodes what many recipients receive alike. The result
 * (`E`: bytes, or a string for WebSocket frames) is made once per batch or
 * event and handed to every peer that speaks the format, so it must not be
 * changed afterwards.
 */
export interface WireFormat<E = unknown> {
  /** For the console and tests: `line`, `irc`, `json`. */
  readonly name: string;
  /** Lines `from` said in `room` (a {@linkcode SaidBatch}), for every other member. */
  encodeLines(room: RoomName, from: Who, batch: SaidBatch): E;
  /** An event every recipient sees alike; null when this format does not show it. */
  encodeEvent(event: RoomEvent): E | null;
}

/**
 * What the core needs of a connection: the transport side of a session.
 * Everything here returns at once: the core never waits for a peer.
 */
export interface Peer<E = unknown> {
  /** The wire format this peer speaks now (a line client may switch to JSON). */
  readonly format: WireFormat<E>;
  /** How it is connected, for people: `line`, `tls`, `unix`, `irc`, `web`. */
  readonly transport: string;
  /** The remote address as people write it: `127.0.0.1:5000`, `[::1]:5000`, `unix:…`. */
  readonly address: string;
  /**
   * True for a peer in one room at a time (line clients: what they type needs
   * no target, so `/join` moves them); false for peers that name the room of
   * every line (IRC, the web page), for whom `/join` adds a room.
   */
  readonly singleRoom: boolean;
  /** Bytes written to the peer so far: how the core tells a slow peer from a stalled one. */
  readonly written: number;
  /**
   * Queues a value made by {@linkcode format}, shared with other peers. It may
   * be a leased buffer (wire/shared_bytes.ts), reused once the call returns:
   * a peer that keeps it takes a hold (`retain`) and gives it up (`release`)
   * once written, as `Connection.send` does.
   */
  send(encoded: E): void;
  /** Queues an event for this peer alone; the peer encodes it. */
  deliver(event: ChatEvent): void;
  /** Whether the peer gets its own room lines of this kind back (IRC's echo-message). */
  echoes(kind: LineKind): boolean;
  /**
   * Ends the connection: no more input is taken, what is queued is written
   * (within the drain timeout, or not at all with `now`), then it closes. The
   * transport then calls `Session.closed()`.
   */
  disconnect(reason: string, now?: boolean): void;
}
