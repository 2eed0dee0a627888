/**
 * The server side of TLS on a socket this process owns, so that closing a
 * connection during its handshake really closes it.
 *
 * Why not `Deno.listenTls`: in Deno 2.9.6, a `TlsConn` accepted from it and
 * closed before its handshake completed keeps its TCP socket open until the
 * peer closes or sends (the handshake task holds it; denoland/deno#35292
 * family). Closing it with `close()`, with or without a pending `handshake()`
 * or `read()`, releases nothing: measured here, 200 silent clients closed by
 * the server still held 200 descriptors, so waves of silent clients took the
 * process to its descriptor limit. There is no server-side `Deno.startTls`
 * (it is client-only) to upgrade a `Deno.TcpConn` we own instead.
 *
 * `node:tls` under Deno does the handshake on a `node:net` socket, and
 * `destroy()` closes that socket at once, handshake or not (the same 200
 * clients: every descriptor back). So TLS is served here with `node:net` and
 * `node:tls` (built into Deno, no npm package), behind the `Deno.Listener` and
 * `Deno.TlsConn` interfaces the rest of charla already speaks.
 *
 * Setting up a `node:tls` server socket costs about 4 ms of CPU here (measured:
 * 300 in 1.2 s), so it is done only once a whole first TLS record (the
 * ClientHello) has arrived: a connection that sends nothing, or a few bytes
 * of a handshake and then nothing, costs a plain socket until it times out.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";

/** Where and with what certificate to serve TLS. */
export interface TlsServerOptions {
  /** Address to bind. */
  hostname: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** PEM certificate chain. */
  cert: string;
  /** PEM private key. */
  key: string;
  /**
   * Share the port with other processes (SO_REUSEPORT): the kernel spreads
   * connections between them. @default {false}
   */
  reusePort?: boolean;
}

/** Most bytes read ahead of the caller: past it, the socket stops reading (TCP pushes back). */
const READ_AHEAD = 64 * 1024;
/** How long a closing connection may take to tell its peer, in milliseconds. */
const CLOSE_NOTIFY_MS = 1000;
/** TLS content type of a handshake record: what a ClientHello comes in. */
const HANDSHAKE_RECORD = 0x16;
/** Longest TLS record: 16 KiB of plaintext, plus what protection may add, plus its header. */
const MAX_RECORD = 5 + 16384 + 2048;

/**
 * Listens for TLS on a socket this process owns. Rejects with the error
 * `node:net` reports (its `code` says why: `EADDRINUSE`, `EACCES`, …), or with
 * the error of an unusable certificate or key.
 *
 * @example
 * ```ts
 * import { listenTls } from "./tls_server.ts";
 * import assert from "node:assert/strict";
 *
 * const fixtures = new URL("../../tests/fixtures/", import.meta.url);
 * const listener = await listenTls({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   cert: await Deno.readTextFile(new URL("server.pem", fixtures)),
 *   key: await Deno.readTextFile(new URL("server-key.pem", fixtures)),
 * });
 * const accepted = listener.accept();
 * const client = await Deno.connectTls({
 *   hostname: "localhost",
 *   port: listener.addr.port,
 *   caCerts: [await Deno.readTextFile(new URL("ca.pem", fixtures))],
 * });
 * const conn = await accepted;
 * const [, sent] = await Promise.all([conn.handshake(), client.write(new TextEncoder().encode("hola"))]);
 * const buf = new Uint8Array(16);
 * assert.equal(new TextDecoder().decode(buf.subarray(0, (await conn.read(buf))!)), "hola");
 * assert.equal(sent, 4);
 * client.close();
 * conn.close();
 * listener.close();
 * ```
 */
export async function listenTls(options: TlsServerOptions): Promise<NodeTlsListener> {
  const context = tls.createSecureContext({ cert: options.cert, key: options.key });
  const server = net.createServer({ noDelay: true });
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  server.once("error", reject);
  server.listen(
    { host: options.hostname, port: options.port, reusePort: options.reusePort ?? false },
    () => resolve(),
  );
  await promise;
  server.off("error", reject);
  return new NodeTlsListener(server, context);
}

/** A TLS listener over a `node:net` server; see the module doc for why. */
export class NodeTlsListener implements Deno.Listener<Deno.TlsConn, Deno.NetAddr> {
  /** The bound address (the real port when bound to port 0). */
  readonly addr: Deno.NetAddr;
  readonly #server: net.Server;
  readonly #context: tls.SecureContext;
  /**
   * Most sockets open at once (accepted or not yet); one more is closed at once
   * by `node:net`, which otherwise accepts every connection as it comes,
   * whatever the caller's limits. Infinity by default; the acceptor sets it.
   */
  get maxConnections(): number {
    return this.#server.maxConnections ?? Infinity;
  }

  set maxConnections(value: number) {
    this.#server.maxConnections = value;
  }

  /** Sockets accepted by the kernel and not yet taken by `accept()`. */
  readonly #ready: net.Socket[] = [];
  /** `accept()` calls waiting for a socket. */
  readonly #waiting: PromiseWithResolvers<Deno.TlsConn>[] = [];
  #closed = false;

  /** Serves `context` on a listening `server`. */
  constructor(server: net.Server, context: tls.SecureContext) {
    this.#server = server;
    this.#context = context;
    const address = server.address() as net.AddressInfo;
    this.addr = { transport: "tcp", hostname: address.address, port: address.port };
    server.on("connection", (socket: net.Socket) => {
      // Until it is accepted, a socket's failure only ends it.
      socket.on("error", () => socket.destroy());
      const waiter = this.#waiting.shift();
      if (waiter !== undefined) waiter.resolve(this.#wrap(socket));
      else this.#ready.push(socket);
    });
    // A listening server emits errors only for its own socket; they end accepting.
    server.on("error", () => this.close());
  }

  /** The next connection, its handshake not yet done (see `NodeTlsConn.handshake`). */
  accept(): Promise<Deno.TlsConn> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("Listener has been closed"));
    }
    const socket = this.#ready.shift();
    if (socket !== undefined) return Promise.resolve(this.#wrap(socket));
    const waiter = Promise.withResolvers<Deno.TlsConn>();
    this.#waiting.push(waiter);
    return waiter.promise;
  }

  #wrap(socket: net.Socket): Deno.TlsConn {
    socket.removeAllListeners("error");
    return new NodeTlsConn(socket, this.#context);
  }

  /** Stops listening; sockets not yet accepted are closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const socket of this.#ready.splice(0)) socket.destroy();
    for (const waiter of this.#waiting.splice(0)) {
      waiter.reject(new Deno.errors.BadResource("Listener has been closed"));
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterableIterator<Deno.TlsConn> {
    while (true) {
      try {
        yield await this.accept();
      } catch (error) {
        if (error instanceof Deno.errors.BadResource) return;
        throw error;
      }
    }
  }

  /** Closes the listener. */
  [Symbol.dispose](): void {
    this.close();
  }

  ref(): void {
    this.#server.ref();
  }

  unref(): void {
    this.#server.unref();
  }
}

/**
 * One server-side TLS connection over a `node:net` socket, as a
 * `Deno.TlsConn`: reads, writes (settling once the bytes left for the socket,
 * so a peer that stops reading makes writes wait, as with Deno's own), and a
 * `close()` that closes the socket whatever state the handshake is in.
 */
export class NodeTlsConn implements Deno.TlsConn {
  readonly localAddr: Deno.NetAddr;
  readonly remoteAddr: Deno.NetAddr;
  readonly #raw: net.Socket;
  readonly #context: tls.SecureContext;
  /** The TLS socket, once the first record arrived (or something was written). */
  #tls: tls.TLSSocket | null = null;
  /** What arrived before the TLS socket was made: given back to it. */
  #hello: Uint8Array | null = null;
  /** Decrypted bytes read ahead, oldest first, and how many bytes they hold. */
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** Set at the peer's end of input. */
  #eof = false;
  /** The error that ended the connection, if one did. */
  #error: Error | null = null;
  #closed = false;
  /** Set once the handshake completed. */
  #secureDone = false;
  /** The read waiting for bytes, if any. */
  #reader: { p: Uint8Array; done: PromiseWithResolvers<number | null> } | null = null;
  /** Settles when the handshake completes, or rejects when the connection ends first. */
  readonly #secure = Promise.withResolvers<Deno.TlsHandshakeInfo>();
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | null = null;
  #writable: WritableStream<Uint8Array<ArrayBufferLike>> | null = null;

  /** Waits for the first TLS record on `raw`; the handshake starts then. */
  constructor(raw: net.Socket, context: tls.SecureContext) {
    this.#raw = raw;
    this.#context = context;
    this.remoteAddr = netAddr(raw.remoteAddress, raw.remotePort);
    this.localAddr = netAddr(raw.localAddress, raw.localPort);
    this.#secure.promise.catch(() => {}); // nobody may ask for the handshake
    raw.on("error", (error: Error) => this.#fail(error));
    raw.on("close", () => {
      if (this.#tls === null) this.#fail(new Deno.errors.ConnectionReset("Connection closed"));
    });
    raw.on("readable", this.#onFirstBytes);
  }

  /** Gathers the first record; makes the TLS socket once it is whole. */
  readonly #onFirstBytes = (): void => {
    for (let chunk; (chunk = this.#raw.read()) !== null;) {
      const hello = this.#hello;
      if (hello === null) this.#hello = chunk;
      else {
        const joined = new Uint8Array(hello.length + chunk.length);
        joined.set(hello);
        joined.set(chunk, hello.length);
        this.#hello = joined;
      }
    }
    const hello = this.#hello;
    if (hello === null || hello.length < 5) return;
    const whole = hello[0] !== HANDSHAKE_RECORD ||
      hello.length >= Math.min(MAX_RECORD, 5 + ((hello[3] << 8) | hello[4]));
    if (whole) this.#start();
  };

  /** Makes the TLS socket (see the module doc for why not sooner). */
  #start(): tls.TLSSocket {
    if (this.#tls !== null) return this.#tls;
    const raw = this.#raw;
    raw.off("readable", this.#onFirstBytes);
    if (this.#hello !== null) raw.unshift(this.#hello);
    this.#hello = null;
    const socket = this.#tls = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: this.#context,
    });
    socket.on("secure", () => {
      this.#secureDone = true;
      this.#secure.resolve({ alpnProtocol: null });
    });
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= READ_AHEAD) socket.pause();
      this.#serveRead();
    });
    socket.on("end", () => {
      this.#eof = true;
      this.#serveRead();
    });
    socket.on("error", (error: Error) => this.#fail(error));
    socket.on("close", () => {
      if (this.#eof) this.#secure.reject(new Deno.errors.UnexpectedEof("Connection closed"));
      else this.#fail(new Deno.errors.ConnectionReset("Connection closed"));
    });
    return socket;
  }

  /** Settles when the handshake is done; rejects with its error, or when the peer leaves first. */
  handshake(): Promise<Deno.TlsHandshakeInfo> {
    return this.#secure.promise;
  }

  read(p: Uint8Array): Promise<number | null> {
    if (this.#reader !== null) return Promise.reject(new Deno.errors.Busy("Read in progress"));
    const done = Promise.withResolvers<number | null>();
    this.#reader = { p, done };
    this.#serveRead();
    return done.promise;
  }

  /** Hands what was read ahead (or the end, or the error) to the waiting read. */
  #serveRead(): void {
    const reader = this.#reader;
    if (reader === null) return;
    if (this.#buffered > 0) {
      let n = 0;
      while (n < reader.p.length && this.#chunks.length > 0) {
        const chunk = this.#chunks[0];
        const take = Math.min(chunk.length, reader.p.length - n);
        reader.p.set(take === chunk.length ? chunk : chunk.subarray(0, take), n);
        n += take;
        if (take === chunk.length) this.#chunks.shift();
        else this.#chunks[0] = chunk.subarray(take);
      }
      this.#buffered -= n;
      if (this.#buffered < READ_AHEAD && !this.#eof && !this.#closed) this.#tls?.resume();
      this.#reader = null;
      reader.done.resolve(n);
    } else if (this.#closed) {
      this.#reader = null;
      reader.done.reject(new Deno.errors.BadResource("Connection closed"));
    } else if (this.#eof) {
      this.#reader = null;
      reader.done.resolve(null);
    } else if (this.#error !== null) {
      this.#reader = null;
      reader.done.reject(this.#error);
    }
  }

  /** Writes once the handshake is done (a write before it starts the handshake). */
  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("Connection closed"));
    if (this.#error !== null) return Promise.reject(this.#error);
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    this.#start().write(p, (error?: Error | null) => {
      if (error) {
        reject(this.#closed ? new Deno.errors.BadResource("Connection closed") : denoError(error));
      } else resolve(p.length);
    });
    return promise;
  }

  /** Ends this side (TLS close_notify, then FIN) once what was written went out. */
  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("Connection closed"));
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#start().end(() => resolve());
    return promise;
  }

  /**
   * Closes the connection. During the handshake, or after an error, the socket
   * is closed at once. Once the handshake is done, the peer is told first
   * (TLS close_notify, then FIN), so it reads an orderly end rather than a
   * truncated stream; the socket is closed when that is written, or after
   * {@linkcode CLOSE_NOTIFY_MS} at most if the peer does not read.
   */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("Connection closed");
    this.#closed = true;
    this.#secure.reject(new Deno.errors.Interrupted("Connection closed during the handshake"));
    this.#serveRead();
    const socket = this.#tls;
    if (socket !== null && this.#secureDone && this.#error === null && !socket.destroyed) {
      const timer = setTimeout(() => this.#destroy(), CLOSE_NOTIFY_MS);
      socket.once("close", () => clearTimeout(timer));
      socket.end(() => this.#destroy());
    } else {
      this.#destroy();
    }
  }

  #destroy(): void {
    this.#tls?.destroy();
    this.#raw.destroy();
  }

  #fail(error: Error): void {
    this.#error ??= denoError(error);
    this.#secure.reject(this.#error);
    this.#serveRead();
  }

  /** Disables Nagle's algorithm (on by default here: the transports coalesce writes). */
  setNoDelay(noDelay = true): void {
    this.#raw.setNoDelay(noDelay);
  }

  ref(): void {
    this.#raw.ref();
  }

  unref(): void {
    this.#raw.unref();
  }

  /** The bytes read, as a stream (made on first use). */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#readable ??= new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        const buf = new Uint8Array(16 * 1024);
        const n = await this.read(buf);
        if (n === null) controller.close();
        else controller.enqueue(buf.subarray(0, n));
      },
      cancel: () => this.#closeQuietly(),
    });
  }

  /** Writing, as a stream (made on first use). */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.#writable ??= new WritableStream<Uint8Array<ArrayBufferLike>>({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => this.closeWrite(),
      abort: () => this.#closeQuietly(),
    });
  }

  #closeQuietly(): void {
    if (!this.#closed) this.close();
  }

  /** Closes the connection. */
  [Symbol.dispose](): void {
    this.#closeQuietly();
  }
}

/** A `Deno.NetAddr` from what `node:net` reports. */
function netAddr(hostname: string | undefined, port: number | undefined): Deno.NetAddr {
  return { transport: "tcp", hostname: hostname ?? "", port: port ?? 0 };
}

/**
 * The `Deno.errors` class for a `node:net` or `node:tls` error, so callers
 * that catch Deno's socket errors treat both alike; other errors (a TLS
 * alert, say) are kept as they are.
 */
function denoError(error: Error): Error {
  if (error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BadResource) {
    return error;
  }
  switch ((error as { code?: string }).code) {
    case "ECONNRESET":
      return new Deno.errors.ConnectionReset(error.message, { cause: error });
    case "EPIPE":
      return new Deno.errors.BrokenPipe(error.message, { cause: error });
    case "ECONNABORTED":
      return new Deno.errors.ConnectionAborted(error.message, { cause: error });
    case "ETIMEDOUT":
      return new Deno.errors.TimedOut(error.message, { cause: error });
    case "ERR_STREAM_DESTROYED":
    case "ERR_STREAM_WRITE_AFTER_END":
      return new Deno.errors.BrokenPipe(error.message, { cause: error });
    default:
      return error;
  }
}
