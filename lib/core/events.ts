/**
 * What a chat server reports to its operator: the events, and the log interface
 * the console implements. Kept apart from the server so tests and other
 * programs can collect events without a terminal.
 *
 * @module
 */

import type { SaidBatch } from "./peer.ts";

/** What the operator's screen shows of a connected person. */
export interface PeerInfo {
  /** Unique for the life of the server: `#7`. */
  readonly id: number;
  /** Current name: `user7` until the person picks one. */
  readonly name: string;
  /** Remote address: `127.0.0.1:51234`, `[::1]:51234`, `unix:(unnamed)`. */
  readonly address: string;
  /** When the person connected. */
  readonly since: Date;
  /** How: `line`, `tls`, `unix`, `irc`, `web`. */
  readonly transport: string;
  /** In a cluster, the node someone on another node is connected to; absent for people here. */
  readonly node?: string;
}

/** Something that happened on the server, other than a plain message. */
export type ServerEvent =
  | {
    readonly event: "listening";
    readonly address: string;
    readonly relay: boolean;
    /** What is spoken there: `line` (the default port), `irc`, `web`. */
    readonly transport: string;
  }
  /** Someone connected (and, on a line port, will join the default room next). */
  | { readonly event: "connect"; readonly peer: PeerInfo }
  /** Someone went into a room. */
  | { readonly event: "join"; readonly peer: PeerInfo; readonly room: string }
  /** Someone left a room without leaving the server; `to` where they went. */
  | {
    readonly event: "part";
    readonly peer: PeerInfo;
    readonly room: string;
    readonly to?: string;
    readonly reason?: string;
  }
  /** Someone left the server. `reason`: see {@linkcode describeLeave}. */
  | { readonly event: "leave"; readonly peer: PeerInfo; readonly reason: string }
  | { readonly event: "nick"; readonly peer: PeerInfo; readonly from: string }
  /** A `/me` action; `room` null when the server is not a chat room. */
  | {
    readonly event: "action";
    readonly peer: PeerInfo;
    readonly room: string | null;
    readonly text: string;
  }
  /** A private message; `from` or `to` is null for the operator. */
  | {
    readonly event: "private";
    readonly from: PeerInfo | null;
    readonly to: PeerInfo | null;
    readonly text: string;
  }
  /** The operator's words, to one room or (null) to everyone. */
  | { readonly event: "broadcast"; readonly room: string | null; readonly text: string }
  /** A room's topic was set; `peer` null when the operator set it. */
  | {
    readonly event: "topic";
    readonly peer: PeerInfo | null;
    readonly room: string;
    readonly topic: string;
  }
  | { readonly event: "kick"; readonly peer: PeerInfo; readonly reason: string }
  /**
   * A connection turned away before joining: `denied by …`, `server full`,
   * `banned by <mask>`, `wrong password`, `too many wrong passwords`, a failed
   * TLS handshake.
   */
  | { readonly event: "refused"; readonly address: string; readonly reason: string }
  /**
   * The operator banned a name, an address or a network; `until` null: until
   * lifted. A name ban whose holder was here comes with a ban on their address.
   */
  | {
    readonly event: "ban";
    readonly mask: string;
    readonly kind: "name" | "address";
    readonly reason: string;
    readonly until: number | null;
  }
  /** The operator lifted a ban. */
  | { readonly event: "unban"; readonly mask: string }
  /**
   * What the store wrote since the last such event (one every minute or so
   * while it writes, and one at shutdown): lines committed, the longest a
   * line waited for its commit, in milliseconds, and lines pruned past the
   * retention limit.
   */
  | {
    readonly event: "store";
    readonly stored: number;
    readonly maxMs: number;
    readonly pruned: number;
  }
  /** The store cannot write (disk full, permission lost); the chat goes on. */
  | { readonly event: "store_failed"; readonly message: string }
  /** The store writes again; `dropped` lines were lost meanwhile (its buffer was full). */
  | { readonly event: "store_recovered"; readonly dropped: number }
  /** A problem with one peer (`peer` set) or with the server. */
  | { readonly event: "error"; readonly peer: PeerInfo | null; readonly message: string }
  | { readonly event: "shutdown"; readonly reason: string }
  /** The cluster's state changed: degraded, back, a node gone (see lib/cluster/). */
  | { readonly event: "cluster"; readonly message: string }
  /**
   * The server made itself a throwaway certificate (`--tls-self-signed`):
   * clients pin its SHA-256 `fingerprint`.
   */
  | { readonly event: "tls"; readonly fingerprint: string };

/** Receives a server's events; the operator console is one. */
export interface ServerLog {
  /** Reports an event. */
  event(event: ServerEvent): void;
  /**
   * Reports a line someone said in `room` (null when the server is not a chat
   * room): `text[start..end)`, sanitized UTF-8 without its line ending. The
   * bytes are only valid during the call. This is the hot path: one call per
   * line, so it should not allocate. `time` is when the line was said (ms
   * since the epoch) when the caller knows it, so the log need not read the
   * clock for every line of a batch.
   */
  message(
    room: string | null,
    peer: PeerInfo,
    text: Uint8Array,
    start: number,
    end: number,
    time?: number,
  ): void;
  /**
   * Reports lines `first` to `batch.count - 1` of a batch `peer` said in
   * `room`, as {@linkcode message} would one by one (which is what happens
   * when a log has no `lines`). The bytes are only valid during the call.
   */
  lines?(room: string, peer: PeerInfo, batch: SaidBatch, first: number): void;
  /**
   * Undefined when the log can take more now; otherwise a promise that settles
   * when it can, and the peer whose line was logged is not read meanwhile. A
   * log the chat must never wait for returns undefined always and drops or
   * summarises instead, as the operator's console does.
   */
  ready(): Promise<void> | undefined;
}

/** A log that drops everything: for servers nobody watches. */
export const SILENT_LOG: ServerLog = {
  event() {},
  message() {},
  ready: () => undefined,
};

/**
 * Turns an unhandled promise rejection, which would end the process, into an
 * error event. Every rejection in charla is handled by construction; this is
 * the guard for the one that is not, so it costs one client at most, never the
 * server. Returns a function that removes the guard.
 */
export function reportUnhandledRejections(log: ServerLog): () => void {
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    const reason = event.reason instanceof Error ? event.reason.message : String(event.reason);
    log.event({ event: "error", peer: null, message: `unhandled rejection: ${reason}` });
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => globalThis.removeEventListener("unhandledrejection", onRejection);
}
