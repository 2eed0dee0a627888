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
 * import { ChatServer, connect } from "./mod.ts";
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
 * assert.deepEqual(lines, ["* welcome, you are user1", "* nobody else is here", "* goodbye"]);
 * connection.close();
 * await server.shutdown();
 * ```
 *
 * @module
 */

export {
  type AccessDecision,
  AccessList,
  type AccessRules,
  type Cidr,
  cidrContains,
  parseCidr,
} from "./net/cidr.ts";
export { ChatServer, type ChatServerOptions } from "./chat_server.ts";
export {
  backoff,
  ChatClient,
  type ChatClientOptions,
  type ClientResult,
  connect,
  ConnectError,
  type ConnectOptions,
  type ConnectTarget,
} from "./client/chat_client.ts";
export {
  type CloseReason,
  Connection,
  type ConnectionOptions,
  DEFAULT_SEND_QUEUE,
  formatAddress,
  isConnectionError,
  type ReadSink,
} from "./net/connection.ts";
export {
  ClientScreen,
  OutputBuffer,
  readLines,
  ServerConsole,
  type ServerConsoleOptions,
} from "./terminal/console.ts";
export {
  describeLeave,
  type PeerInfo,
  type ServerEvent,
  type ServerLog,
  SILENT_LOG,
} from "./core/events.ts";
export {
  DEFAULT_MAX_LINE,
  LineDecoder,
  type LineDecoderOptions,
  type LineSink,
} from "./wire/frame.ts";
export { checkName, Hub, type HubPeer, MAX_NAME, RESERVED_NAMES } from "./core/hub.ts";
export { listen, ListenError, type ListenTarget } from "./net/listen.ts";
export { OPERATOR_HELP, type OperatorResult, runOperatorLine } from "./core/operator.ts";
export { TelnetFilter } from "./wire/telnet.ts";
export { ByteBuilder, sanitize, sanitizeText } from "./wire/text.ts";
export { TokenBucket } from "./core/token_bucket.ts";
export { VERSION } from "./version.ts";
