/**
 * The cluster seam: what the core tells other nodes ({@linkcode Bus}), and
 * what it tells them in ({@linkcode BusMessage}). The core imports no bus: a
 * cluster module (lib/cluster/) implements this interface and hands what other
 * nodes said back to the core through `ChatCore.remote` (see remote.ts), which
 * fans it out to the people here only, never publishing it again.
 *
 * Alone, a core has no bus, and the hot path pays one null check.
 *
 * @module
 */

import type { ChatCore } from "./chat.ts";
import type { RoomName, Who } from "./messages.ts";
import type { SaidBatch } from "./peer.ts";
import type { RemotePerson } from "./remote.ts";
import type { Room } from "./room.ts";
import type { Session } from "./session.ts";

/**
 * Something that happened here that other nodes must know. Sessions are
 * passed as they are: a bus reads what it needs (name, rooms, away) at once,
 * before returning.
 */
export type BusMessage =
  /** Someone connected here (under their default name, in no room yet). */
  | { readonly type: "connect"; readonly who: Session }
  /** Someone here went into a room (`from`: the room a line client left for it). */
  | { readonly type: "join"; readonly room: Room; readonly who: Session; readonly from?: RoomName }
  /** Someone here left a room but not the server. */
  | {
    readonly type: "part";
    readonly room: Room;
    readonly who: Session;
    readonly to?: RoomName;
    readonly reason?: string;
  }
  /** Someone here left the server; `rooms` are those they were in. */
  | {
    readonly type: "quit";
    readonly who: Session;
    readonly rooms: readonly Room[];
    readonly reason: string;
  }
  /** Someone here took a new name (already granted by the directory). */
  | { readonly type: "nick"; readonly who: Session; readonly from: string }
  /** Someone here is away, or back (`who.away`). */
  | { readonly type: "away"; readonly who: Session }
  /** A room's topic was set here (`by`: a name, or `server`). */
  | {
    readonly type: "topic";
    readonly room: Room;
    readonly topic: string;
    readonly by: string;
    readonly time: number;
  }
  /** This node's operator said something to one room: `<server> text`. */
  | { readonly type: "notice"; readonly room: Room; readonly text: string; readonly time: number }
  /** This node's operator said something to everyone in the cluster. */
  | { readonly type: "broadcast"; readonly text: string }
  /** A private message for someone on another node (`from` null: this node's operator). */
  | {
    readonly type: "private";
    readonly from: Who | null;
    readonly to: RemotePerson;
    readonly text: string;
    readonly action: boolean;
    readonly time: number;
    /** An IRC NOTICE: nothing answers it automatically. */
    readonly notice?: boolean;
  }
  /** This node's operator disconnects someone on another node. */
  | { readonly type: "kick"; readonly target: RemotePerson; readonly reason: string };

/**
 * Carries what happens here to the other nodes of a cluster, and theirs to
 * here. Every method returns at once: a bus never makes the core wait, and
 * when it cannot reach the others it says so through {@linkcode Bus.degraded}
 * and tells the people here itself.
 */
export interface Bus {
  /** Called once, by the core it serves, from the core's constructor. */
  attach(core: ChatCore): void;
  /**
   * Lines said here, after they went to the people here: the hot path. The
   * batch is only valid during the call (encode it once, keep nothing of it).
   */
  lines(room: Room, from: Session, batch: SaidBatch): void;
  /** Everything else other nodes must know. */
  publish(message: BusMessage): void;
  /**
   * Null while other nodes can be reached; otherwise why not, as a sentence
   * fragment (`the cluster is degraded: …`), for errors such as a private
   * message that cannot go out.
   */
  readonly degraded: string | null;
  /** Says goodbye to the other nodes and lets go of the connections; after the last session closed. */
  close(): Promise<void>;
}
