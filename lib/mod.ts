/**
 * charla as a library: a chat server with rooms, for Deno, and its clients.
 *
 * - {@linkcode ChatServer} serves an already-bound listener (see
 *   {@linkcode listen}); its {@linkcode ChatCore} holds the rooms, and any
 *   transport that implements {@linkcode Peer} and {@linkcode WireFormat} can
 *   attach people to it.
 * - {@linkcode Bot} is a client for programs: messages as plain objects,
 *   `say()`, `join()`. {@linkcode ChatClient} is the lower level one client.ts
 *   is made of (reconnecting, an outbox).
 * - {@linkcode ircTransport} serves IRC clients in the same rooms:
 *   `server.serve(listener, ircTransport(server.core))`.
 * - Events ({@linkcode ChatEvent}) and commands ({@linkcode Command}) are typed;
 *   they are also the JSON protocol.
 * - {@linkcode Cluster} joins a server to others through Redis: pass it as the
 *   core's `bus`, with its `ids`, `claims` and `store` (see server.ts).
 * - History, topics and bans live in a {@linkcode Store}: {@linkcode MemoryStore}
 *   by default, {@linkcode SqliteStore} to keep them across restarts.
 *
 * @example A room and two bots
 * ```ts
 * import { Bot, ChatServer } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * await using server = new ChatServer(listener, { relay: true });
 * await using ana = await Bot.connect({ port: listener.addr.port, name: "ana" });
 * await using bea = await Bot.connect({ port: listener.addr.port, name: "bea" });
 * const heard = new Promise((resolve) => bea.on("message", resolve));
 * ana.say("hola");
 * assert.deepEqual(await heard, {
 *   room: "#lobby",
 *   from: "ana",
 *   text: "hola",
 *   private: false,
 *   action: false,
 * });
 * ```
 *
 * @module
 */

export { ChatServer, type ChatServerOptions } from "./chat_server.ts";
export { ChatCore, type ChatCoreOptions } from "./core/chat.ts";
export type { Bus, BusMessage } from "./core/bus.ts";
export type { IdSource, NameClaims } from "./core/directory.ts";
export { RemotePerson } from "./core/remote.ts";
export { Cluster, ClusterError, type ClusterOptions } from "./cluster/cluster.ts";
export { RedisStore } from "./cluster/redis_store.ts";
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
export { Bot, type BotMessage, type BotOptions } from "./client/bot.ts";
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
export {
  type PasswordVerdict,
  ServerPassword,
  type ServerPasswordOptions,
} from "./core/password.ts";
export { runOperatorLine } from "./operator.ts";
export { CAPABILITIES, ircTransport, type IrcTransportOptions } from "./transports/irc.ts";
export { MemoryStore } from "./store/memory.ts";
export { SqliteStore, type SqliteStoreOptions } from "./store/sqlite.ts";
export {
  type Ban,
  type Store,
  type StoredTopic,
  StoreError,
  type StoreEvent,
  type StoreOptions,
} from "./store/store.ts";
export { ServerConsole } from "./terminal/server_console.ts";
export { VERSION } from "./version.ts";
