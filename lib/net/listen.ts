/**
 * Binding a server: TCP, TLS or a Unix socket, with errors that say what
 * happened and what to try.
 *
 * @module
 */

import { formatAddress, message } from "./connection.ts";
import { listenTls } from "./tls_server.ts";

/** Where and how to listen. */
export interface ListenTarget {
  /** Address to bind. @default {"127.0.0.1"} */
  hostname?: string;
  /** TCP port; 0 picks a free one. @default {5000} */
  port?: number;
  /** A Unix socket path; when set, `hostname` and `port` are ignored. */
  path?: string;
  /** PEM file of the server's certificate chain, for TLS (needs `certFile` and `keyFile`). */
  certFile?: string;
  /** PEM file of the server's private key. */
  keyFile?: string;
  /** The certificate chain and key themselves (PEM), instead of `certFile` and `keyFile`. */
  tls?: { cert: string; key: string };
  /**
   * Share the port with other processes that ask for the same (`SO_REUSEPORT`;
   * Linux spreads new connections among them). Needs Deno's `--unstable-net`:
   * see {@linkcode reusePortAvailable}.
   * @default {false}
   */
  reusePort?: boolean;
}

/**
 * Whether `reusePort` may be asked for: Deno 2.9 ends the process (exit code
 * 70, which nothing can catch) when a listener asks for it without
 * `--unstable-net`, so check first. The flag also enables
 * `Deno.listenDatagram`, which is how its presence shows.
 */
export function reusePortAvailable(): boolean {
  return typeof (Deno as unknown as { listenDatagram?: unknown }).listenDatagram === "function";
}

/** Thrown when a server cannot listen; the message is a sentence for the user. */
export class ListenError extends Error {
  /** `message`: what failed and what to try. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ListenError";
  }
}

/**
 * Binds a listener. A stale Unix socket file (left by a server that died: nobody
 * accepts on it) is removed first; a live one is an error.
 *
 * @example
 * ```ts
 * import { listen, ListenError } from "./listen.ts";
 * import assert from "node:assert/strict";
 *
 * using first = await listen({ port: 0 });
 * const port = (first.addr as Deno.NetAddr).port;
 * await assert.rejects(listen({ port }), ListenError);
 * ```
 */
export async function listen(target: ListenTarget): Promise<Deno.Listener> {
  if (target.path !== undefined) return await listenUnix(target.path);
  const hostname = target.hostname ?? "127.0.0.1";
  const port = target.port ?? 5000;
  const where = formatAddress({ transport: "tcp", hostname, port });
  if ((target.certFile === undefined) !== (target.keyFile === undefined)) {
    throw new ListenError("TLS needs both --tls-cert and --tls-key");
  }
  let tls: { cert: string; key: string } | null = target.tls ?? null;
  if (tls === null && target.certFile !== undefined && target.keyFile !== undefined) {
    tls = await readTls(target.certFile, target.keyFile);
  }
  if (target.reusePort && !reusePortAvailable()) {
    throw new ListenError("Sharing a port (--reuse-port) needs Deno's --unstable-net flag");
  }
  // Only set when asked for: Deno refuses the option itself without --unstable-net.
  const shared = target.reusePort ? { reusePort: true } : {};
  try {
    // TLS on a socket we own: see tls_server.ts for why not Deno.listenTls.
    return tls === null
      ? Deno.listen({ hostname, port, ...shared })
      : await listenTls({ hostname, port, ...tls, ...shared });
  } catch (error) {
    throw new ListenError(`Cannot listen on "${where}": ${explainListenError(error, port)}`, {
      cause: error,
    });
  }
}

/**
 * Reads a certificate chain and its private key (PEM files), for a TLS listener
 * or `Deno.serve`; a missing, unreadable or non-PEM file is a {@linkcode ListenError}.
 */
export async function readTls(
  certFile: string,
  keyFile: string,
): Promise<{ cert: string; key: string }> {
  return { cert: await readPem(certFile, "certificate"), key: await readPem(keyFile, "key") };
}

async function readPem(file: string, what: string): Promise<string> {
  try {
    const text = await Deno.readTextFile(file);
    if (!text.includes("-----BEGIN")) {
      throw new ListenError(`Cannot use "${file}" as the TLS ${what}: it is not a PEM file`);
    }
    return text;
  } catch (error) {
    if (error instanceof ListenError) throw error;
    const why = error instanceof Deno.errors.NotCapable
      ? "reading it needs --allow-read"
      : error instanceof Deno.errors.NotFound
      ? "no such file"
      : message(error);
    throw new ListenError(`Cannot read the TLS ${what} "${file}": ${why}`, { cause: error });
  }
}

/**
 * Why binding `port` failed, for people: what happened and what to try (`flag`
 * is the option that picks the port).
 */
export function explainListenError(error: unknown, port: number, flag = "--port"): string {
  // node:net (the TLS listener) reports errors by code.
  const code = (error as { code?: string }).code;
  if (error instanceof Deno.errors.AddrInUse || code === "EADDRINUSE") {
    return `the address is in use (is another server running there?); stop it or pick another ${flag}`;
  }
  if (error instanceof Deno.errors.NotCapable) {
    return "network access not allowed; run with --allow-net";
  }
  if (error instanceof Deno.errors.PermissionDenied || code === "EACCES") {
    return port < 1024
      ? `permission denied; ports below 1024 need privileges, so pick a ${flag} from 1024 up`
      : "permission denied";
  }
  if (error instanceof Deno.errors.AddrNotAvailable || code === "EADDRNOTAVAIL") {
    return "no such address on this machine; try --host 127.0.0.1, 0.0.0.0 or ::";
  }
  if (error instanceof Deno.errors.InvalidData || /certificate|key|pem/i.test(message(error))) {
    return `the TLS certificate or key is not valid (${message(error)})`;
  }
  return message(error);
}

async function listenUnix(path: string): Promise<Deno.Listener> {
  const where = `unix:${path}`;
  try {
    return Deno.listen({ transport: "unix", path });
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) {
      throw new ListenError(`Cannot listen on "${where}": ${explainUnix(error)}`, { cause: error });
    }
  }
  // The file exists. If a server answers on it, it is not ours to remove.
  try {
    const probe = await Deno.connect({ transport: "unix", path });
    probe.close();
    throw new ListenError(`Cannot listen on "${where}": another server is listening there`);
  } catch (error) {
    if (error instanceof ListenError) throw error;
    if (!(error instanceof Deno.errors.ConnectionRefused)) {
      throw new ListenError(`Cannot listen on "${where}": ${explainUnix(error)}`, { cause: error });
    }
  }
  const info = await Deno.lstat(path);
  if (!info.isSocket) {
    throw new ListenError(`Cannot listen on "${where}": the file exists and is not a socket`);
  }
  await Deno.remove(path);
  try {
    return Deno.listen({ transport: "unix", path });
  } catch (error) {
    throw new ListenError(`Cannot listen on "${where}": ${explainUnix(error)}`, { cause: error });
  }
}

function explainUnix(error: unknown): string {
  if (error instanceof Deno.errors.NotCapable) {
    return "a Unix socket needs --allow-read and --allow-write";
  }
  if (error instanceof Deno.errors.NotFound) return "no such directory";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  return message(error);
}
