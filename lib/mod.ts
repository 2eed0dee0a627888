/**
 * charla as a library: a line-based TCP chat server and client for Deno, and the
 * pieces they are made of.
 *
 * - {@linkcode ChatServer} serves an already-bound listener; {@linkcode listen}
 *   binds one (TCP, TLS or a Unix socket) with errors people can act on.
 * - {@linkcode connect} opens a line-level {@linkcode Connection} to a server;
 *   {@linkcode ChatClient} adds an outbox and reconnecting.
 * - {@linkcode LineDecoder} splits bytes into bounded lines and
 *   {@linkcode sanitize} makes peer text safe for any terminal.
 *
 * @example A room, and a client that says hello
 * ```ts
 * import { ChatServer } from "./mod.ts";
 * import { connect } from "./client/chat_client.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const server = new ChatServer(listener, { relay: true });
 * const lines: string[] = [];
 * const connection = await connect({ port: listener.addr.port });
 * const done = connection.readLines({
 *   line: (buf, start, end) => lines.push(new TextDecoder().decode(buf.subarray(start, end))),
 *   overlong: () => {},
 *   flush: () => {},
 * });
 * connection.send(new TextEncoder().encode("/quit hasta luego\n"));
 * assert.equal(await done, "eof"); // the server closed after saying goodbye
 * assert.deepEqual(lines, [
 *   "* welcome, you are user1",
 *   "* you are in #lobby; nobody else is here",
 *   "* goodbye",
 * ]);
 * connection.close();
 * await server.shutdown();
 * ```
 *
 * @module
 */

export { ChatServer, type ChatServerOptions } from "./chat_server.ts";
export { ChatCore, type ChatCoreOptions } from "./core/chat.ts";
export type { PeerInfo, ServerEvent, ServerLog } from "./core/events.ts";
export type {
  ChatEvent,
  Command,
  ErrorCode,
  HistoryLine,
  MemberInfo,
  RoomInfo,
  Who,
} from "./core/messages.ts";
export { type Peer, SaidBatch, type WireFormat } from "./core/peer.ts";
export type { Session } from "./core/session.ts";
export {
  ChatClient,
  type ChatClientOptions,
  type ClientResult,
  connect,
  ConnectError,
  type ConnectTarget,
} from "./client/chat_client.ts";
export { AccessList } from "./net/cidr.ts";
export { type ConnectionHandler, Gate } from "./net/acceptor.ts";
export { listen, ListenError, type ListenTarget } from "./net/listen.ts";
export { runOperatorLine } from "./operator.ts";
export { MemoryStore } from "./store/memory.ts";
export type { Ban, Store, StoredTopic, StoreEvent, StoreOptions } from "./store/store.ts";
export { ServerConsole } from "./terminal/server_console.ts";
export { VERSION } from "./version.ts";
