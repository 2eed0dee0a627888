#!/usr/bin/env -S deno run --allow-net
/**
 * charla server: a TCP chat server with an operator console.
 *
 * ```sh
 * deno run --allow-net server.ts               # listens on 127.0.0.1:5000
 * deno run --allow-net server.ts --relay -p 0  # a chat room, on any free port
 * ```
 *
 * Run with `--help` for every option.
 *
 * @module
 */

import { AccessList } from "./lib/net/cidr.ts";
import { warmUp } from "./lib/warm_up.ts";
import { CertError, DEFAULT_HOSTS, makeSelfSigned } from "./lib/net/make_cert.ts";
import { ChatServer, type ChatServerOptions } from "./lib/chat_server.ts";
import { Cluster, ClusterError } from "./lib/cluster/cluster.ts";
import { parseRedisUrl } from "./lib/cluster/redis.ts";
import { MemoryStore } from "./lib/store/memory.ts";
import {
  conflicts,
  MAX_LINE_LIMIT,
  parseBytes,
  parseCount,
  parseFlags,
  parseHostPort,
  parsePort,
  parseRate,
  parseSeconds,
  problemLine,
  requires,
  UsageError,
  usageText,
  whyUnreadable,
} from "./lib/cli.ts";
import { OutputBuffer } from "./lib/terminal/output.ts";
import { operatorLine, runOperatorConsole, ServerConsole } from "./lib/terminal/server_console.ts";
import { processTerminal, Terminal } from "./lib/terminal/terminal.ts";
import { reportUnhandledRejections } from "./lib/core/events.ts";
import { checkRoomName } from "./lib/core/names.ts";
import { DEFAULT_MAX_LINE } from "./lib/wire/frame.ts";
import {
  listen,
  ListenError,
  type ListenTarget,
  readTls,
  reusePortAvailable,
} from "./lib/net/listen.ts";
import { normalizeOrigin, WebServer } from "./lib/transports/web.ts";
import { Styler, terminalColorDepth } from "./lib/terminal/style.ts";
import { ircTransport } from "./lib/transports/irc.ts";
import { VERSION } from "./lib/version.ts";
import { StoreReporter } from "./lib/store/reporter.ts";
import { SqliteStore } from "./lib/store/sqlite.ts";
import { type Store, StoreError } from "./lib/store/store.ts";

const USAGE = `charla server ${VERSION}: a TCP chat server with an operator console

Usage: deno run --allow-net server.ts [options]

Where to listen:
  -H, --host <addr>         address to bind (default 127.0.0.1; 0.0.0.0 or :: for other machines)
  -p, --port <n>            TCP port; 0 picks a free one (default 5000)
      --unix <path>         listen on a Unix socket instead (needs --allow-read --allow-write)
      --tls-cert <pem>      serve TLS with this certificate chain (needs --allow-read)
      --tls-key <pem>       ... and this private key
      --tls-self-signed     serve TLS with a throwaway certificate made at start
                            by openssl (needs --allow-run=openssl); clients pin
                            the fingerprint it prints (client.ts --fingerprint)
      --reuse-port          share the port with the other nodes of a --cluster on
                            this machine (Linux spreads connections among them;
                            needs Deno's --unstable-net)
      --web [host:]port     also serve the chat page for browsers, and its
                            WebSocket, there (host: as --host; HTTPS with --tls-cert)
      --web-origin <url>    let pages from this origin connect too, besides the
                            page's own (repeatable; * for any)

How it behaves:
  -r, --relay               chat rooms: people talk with each other, in rooms
                            (default: clients talk with the operator only)
      --room <#name>        the room everyone starts in (default #lobby)
      --history <n>         lines of a room's history shown on joining it
                            (default 50; 0 for none)
      --motd <file>         a message of the day, shown after the welcome
                            (needs --allow-read)
      --json                log events as JSON lines, for jq and log collectors

Keeping things:
      --db <file>           keep history, topics and bans in this SQLite file
                            (needs --allow-read and --allow-write for it and
                            its directory); without it they are lost at exit
      --history-keep <n>    lines kept per room, older ones pruned (default 10000)
      --db-max-size <bytes> largest the file may grow to (such as 500M); past
                            it, writes fail as on a full disk and the chat goes on

Who may come in:
      --password-file <file>
                            every client must first give the password in this
                            file (line clients: /pass; IRC: PASS); needs
                            --allow-read; use it with TLS

IRC (irssi, WeeChat, HexChat, bots) in the same rooms:
      --irc <[host:]port>   also speak IRC there (needs --relay; the host
                            defaults to --host), e.g. --irc 6667
      --irc-tls <[host:]port>  IRC over TLS there, e.g. 6697 (needs --tls-cert
                            and --tls-key, or --tls-self-signed, which then
                            serve the line port too)
      --server-name <name>  the server's name IRC clients see (default charla)
      --oper-file <f>       IRC operators, one "name password" per line: OPER
                            lets them disconnect people with KILL (--allow-read)

Cluster (several processes or machines sharing rooms, through Redis):
      --cluster <url>       redis://[user:password@]host[:port][/db], or rediss://
                            for TLS; needs --relay
      --cluster-password-file <file>
                            read the Redis password from this file (needs --allow-read)
      --cluster-ca <pem>    trust this authority for rediss:// (needs --allow-read)
      --node <name>         this node's name in the cluster (default host:pid;
                            the host name needs --allow-sys=hostname)
      --node-timeout <s>    a node silent this long is taken for dead and its
                            people for gone (default 3)

Limits:
      --max-clients <n>     most clients at once (default 1024)
      --max-per-address <n> most clients at once from one address, loopback
                            included; 0 for no limit (default 16)
      --max-line <bytes>    longest line accepted (default ${DEFAULT_MAX_LINE})
      --send-queue <bytes>  how far behind a client may fall (default 1M); while
                            one is further behind on its rooms, heavy senders
                            there wait (nothing is lost), and one that does not
                            catch up is dropped as too slow
      --idle-timeout <s>    disconnect clients that complete no line for this
                            long (default: never)
      --line-timeout <s>    disconnect a client that takes longer than this to
                            end a line it began (default 30; 0: never)
      --flood <lines/s>     drop lines over this rate per client (default: no limit)
      --allow <cidr>        accept only these addresses (repeatable)
      --deny <cidr>         refuse these addresses; wins over --allow (repeatable)
      --drain-timeout <s>   at shutdown, wait this long for queued lines (default 5)

  -h, --help                show this help
  -V, --version             show the version

The operator types on stdin: text goes to every client; /to <id|name> <text>,
/list, /kick <id|name> [reason], /ban <name|address|cidr> [duration] [reason],
/unban, /bans, /quit, /help. Ctrl-C shuts down gracefully (twice: at once). The first line printed is always "listening on <address>".

Examples:
  deno run --allow-net server.ts
  deno run --allow-net server.ts --relay --irc 6667
  deno run --allow-net server.ts --relay --host 0.0.0.0 --allow 192.0.2.0/24
  deno run --allow-net --allow-read server.ts -r --tls-cert cert.pem --tls-key key.pem
  deno run --allow-net --allow-read=chat --allow-write=chat server.ts -r --db chat/charla.db
  deno run --allow-net server.ts -r --cluster redis://127.0.0.1:6379 --node a -p 5000
  deno run --allow-net --unstable-net server.ts -r --reuse-port --cluster redis://127.0.0.1
  deno run --allow-net server.ts --relay --web 8080     # then open http://127.0.0.1:8080/`;

const OPTIONS = {
  host: { type: "string", short: "H" },
  port: { type: "string", short: "p" },
  unix: { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  web: { type: "string" },
  "web-origin": { type: "string", multiple: true },
  relay: { type: "boolean", short: "r" },
  room: { type: "string" },
  history: { type: "string" },
  "history-keep": { type: "string" },
  db: { type: "string" },
  "db-max-size": { type: "string" },
  "password-file": { type: "string" },
  motd: { type: "string" },
  json: { type: "boolean" },
  irc: { type: "string" },
  "irc-tls": { type: "string" },
  "server-name": { type: "string" },
  "oper-file": { type: "string" },
  "max-clients": { type: "string" },
  "max-per-address": { type: "string" },
  "line-timeout": { type: "string" },
  "max-line": { type: "string" },
  "send-queue": { type: "string" },
  "idle-timeout": { type: "string" },
  flood: { type: "string" },
  allow: { type: "string", multiple: true },
  deny: { type: "string", multiple: true },
  "drain-timeout": { type: "string" },
  "reuse-port": { type: "boolean" },
  "tls-self-signed": { type: "boolean" },
  cluster: { type: "string" },
  "cluster-password-file": { type: "string" },
  "cluster-ca": { type: "string" },
  node: { type: "string" },
  "node-timeout": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** What the command line asked for. */
interface ServerArgs {
  help: boolean;
  version: boolean;
  json: boolean;
  target: ListenTarget;
  /** Make a throwaway certificate at start and serve TLS with it. */
  tlsSelfSigned: boolean;
  /** Where to serve the web page, if anywhere. */
  web: { hostname: string; port: number } | null;
  webOrigins: string[];
  relay: boolean;
  room: string;
  history: number;
  historyKeep: number;
  db: string | undefined;
  dbMaxSize: number | null;
  passwordFile: string | undefined;
  motdFile: string | undefined;
  maxClients: number;
  maxPerAddress: number;
  lineTimeout: number;
  maxLine: number;
  sendQueue: number;
  idleTimeout: number;
  flood: number;
  access: AccessList;
  drainTimeout: number;
  /** The cluster to join, if any. */
  cluster: {
    url: string;
    passwordFile?: string;
    caFile?: string;
    node?: string;
    nodeTimeout: number;
  } | null;
  /** Where to speak IRC, plain and over TLS. */
  irc: { hostname: string; port: number } | null;
  ircTls: { hostname: string; port: number } | null;
  serverName: string;
  operFile: string | undefined;
}

function parseServerArgs(args: string[]): ServerArgs {
  const { values: v, positionals } = parseFlags(args, OPTIONS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  requires(v, "tls-cert", "tls-key");
  requires(v, "tls-key", "tls-cert");
  requires(v, "db-max-size", "db");
  requires(v, "web-origin", "web");
  requires(v, "irc", "relay");
  requires(v, "irc-tls", "relay");
  if (v["irc-tls"] !== undefined && v["tls-cert"] === undefined && !v["tls-self-signed"]) {
    throw new UsageError("--irc-tls needs --tls-cert or --tls-self-signed");
  }
  conflicts(v, [["tls-self-signed", "tls-cert"], ["tls-self-signed", "unix"]]);
  conflicts(v, [["unix", "tls-cert"], ["unix", "host"], ["unix", "port"], ["unix", "reuse-port"]]);
  for (const flag of ["cluster-password-file", "cluster-ca", "node", "node-timeout"]) {
    requires(v, flag, "cluster");
  }
  requires(v, "cluster", "relay");
  // A cluster keeps history, topics and bans in Redis, shared by every node.
  conflicts(v, [["cluster", "db"]]);
  if (v.cluster !== undefined) {
    try {
      parseRedisUrl(v.cluster);
    } catch (error) {
      throw new UsageError(`--cluster: ${(error as Error).message}`, { cause: error });
    }
  }
  if (v["reuse-port"] && v.cluster === undefined) {
    throw new UsageError(
      "--reuse-port needs --cluster: processes that share a port must share their rooms",
    );
  }
  if (v["reuse-port"] && !reusePortAvailable()) {
    throw new UsageError(
      "--reuse-port needs Deno's --unstable-net flag: " +
        "deno run --allow-net --unstable-net server.ts --reuse-port …",
    );
  }
  const webOrigins = v["web-origin"] ?? [];
  for (const origin of webOrigins) {
    try {
      if (origin !== "*") normalizeOrigin(origin);
    } catch (error) {
      throw new UsageError(`invalid --web-origin "${origin}": ${(error as Error).message}`);
    }
  }
  let access: AccessList;
  try {
    access = new AccessList({ allow: v.allow ?? [], deny: v.deny ?? [] });
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
  return {
    help: v.help ?? false,
    version: v.version ?? false,
    json: v.json ?? false,
    target: {
      hostname: v.host ?? "127.0.0.1",
      port: v.port === undefined ? 5000 : parsePort(v.port),
      path: v.unix,
      certFile: v["tls-cert"],
      keyFile: v["tls-key"],
      reusePort: v["reuse-port"] ?? false,
    },
    tlsSelfSigned: v["tls-self-signed"] ?? false,
    web: v.web === undefined ? null : parseHostPort(v.web, "--web", v.host ?? "127.0.0.1"),
    webOrigins,
    relay: v.relay ?? false,
    room: v.room === undefined ? "#lobby" : parseRoom(v.room),
    history: v.history === undefined ? 50 : parseCount(v.history, "--history", 0),
    historyKeep: v["history-keep"] === undefined
      ? 10_000
      : parseCount(v["history-keep"], "--history-keep", 0),
    db: v.db,
    dbMaxSize: v["db-max-size"] === undefined
      ? null
      : parseBytes(v["db-max-size"], "--db-max-size", 64 * 1024),
    passwordFile: v["password-file"],
    motdFile: v.motd,
    maxClients: v["max-clients"] === undefined
      ? 1024
      : parseCount(v["max-clients"], "--max-clients"),
    maxPerAddress: v["max-per-address"] === undefined
      ? 16
      : parseCount(v["max-per-address"], "--max-per-address", 0),
    lineTimeout: v["line-timeout"] === undefined
      ? 30_000
      : parseSeconds(v["line-timeout"], "--line-timeout"),
    maxLine: v["max-line"] === undefined
      ? DEFAULT_MAX_LINE
      : parseBytes(v["max-line"], "--max-line", { max: MAX_LINE_LIMIT }),
    sendQueue: v["send-queue"] === undefined
      ? 1024 * 1024
      : parseBytes(v["send-queue"], "--send-queue", 1024),
    idleTimeout: v["idle-timeout"] === undefined
      ? 0
      : parseSeconds(v["idle-timeout"], "--idle-timeout", 1),
    flood: v.flood === undefined ? 0 : parseRate(v.flood, "--flood"),
    access,
    drainTimeout: v["drain-timeout"] === undefined
      ? 5000
      : parseSeconds(v["drain-timeout"], "--drain-timeout"),
    cluster: v.cluster === undefined ? null : {
      url: v.cluster,
      passwordFile: v["cluster-password-file"],
      caFile: v["cluster-ca"],
      node: v.node,
      nodeTimeout: v["node-timeout"] === undefined
        ? 3000
        : parseSeconds(v["node-timeout"], "--node-timeout", 0.1),
    },
    irc: v.irc === undefined ? null : parseHostPort(v.irc, "--irc", v.host ?? "127.0.0.1"),
    ircTls: v["irc-tls"] === undefined
      ? null
      : parseHostPort(v["irc-tls"], "--irc-tls", v.host ?? "127.0.0.1"),
    serverName: v["server-name"] === undefined ? "charla" : parseServerName(v["server-name"]),
    operFile: v["oper-file"],
  };
}

/** A room name given on the command line: `#dev`, or `dev` for short. */
function parseRoom(text: string): string {
  const room = text.startsWith("#") ? text : `#${text}`;
  const problem = checkRoomName(room);
  if (problem !== null) throw new UsageError(`invalid --room "${text}": ${problem}`);
  return room;
}

/** A server name for IRC: a host name's characters, as IRC prefixes need. */
function parseServerName(text: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(text)) {
    throw new UsageError(
      `invalid --server-name "${text}": use letters, digits, "." and "-", as in a host name`,
    );
  }
  return text;
}

/** Longest message of the day, in bytes: it is sent to everyone who connects. */
const MAX_MOTD = 16 * 1024;

/** Reads a file named by a flag; a problem is a sentence for `problemLine`. */
async function readFlagFile(flag: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new StartError(`cannot read ${flag} "${path}": ${whyUnreadable(error)}`, {
      cause: error,
    });
  }
}

/** A problem found while starting: one line, exit 1. */
class StartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StartError";
  }
}

/**
 * The password in `--password-file`: the file's one line (its line ending is
 * not part of it). Warns when other users may read the file.
 */
async function readPassword(path: string, warn: (text: string) => void): Promise<string> {
  const text = await readFlagFile("--password-file", path);
  const password = text.replace(/\r?\n$/, "");
  if (password === "") throw new StartError(`--password-file "${path}" is empty`);
  if (/[\r\n]/.test(password)) {
    throw new StartError(
      `--password-file "${path}" holds more than one line; put the password alone in it`,
    );
  }
  const mode = (await Deno.stat(path)).mode;
  if (mode !== null && (mode & 0o077) !== 0) {
    warn(`--password-file "${path}" can be read by other users; chmod 600 it`);
  }
  return password;
}

/** IRC operators in `file`: `name password` per line; blank lines and `#` comments skipped. */
async function readOperators(file: string): Promise<Map<string, string>> {
  const operators = new Map<string, string>();
  const lines = (await readFlagFile("--oper-file", file)).split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const [name, password, ...rest] = line.trim().split(/\s+/);
    if (password === undefined || rest.length > 0) {
      throw new StartError(`line ${i + 1} of "${file}" is not "name password"`);
    }
    operators.set(name, password);
  });
  return operators;
}

/** The lines of `--motd`, without trailing blank lines. */
async function readMotd(path: string): Promise<string[]> {
  const text = await readFlagFile("--motd", path);
  if (new TextEncoder().encode(text).length > MAX_MOTD) {
    throw new StartError(`--motd "${path}" is larger than ${MAX_MOTD / 1024} KiB`);
  }
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  return lines;
}

/** Runs the server with these command-line arguments; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  const stderr = new OutputBuffer(Deno.stderr);
  let options: ServerArgs;
  try {
    options = parseServerArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    stderr.line(usageText("server", error));
    await stderr.drained();
    return 2;
  }
  // Past 1 MiB of backlog the console skips lines (and says how many) rather
  // than make the chat wait: a file keeps up, a stalled pipe does not.
  const stdout = new OutputBuffer(Deno.stdout);
  if (options.help || options.version) {
    stdout.line(options.help ? USAGE : `charla server ${VERSION}`);
    await stdout.drained();
    return 0;
  }

  const fail = async (message: string) => {
    stderr.line(problemLine("server", message));
    await stderr.drained();
    return 1;
  };
  let password: string | undefined;
  let operators: Map<string, string> | undefined;
  let motd: string[] = [];
  try {
    if (options.passwordFile !== undefined) {
      password = await readPassword(
        options.passwordFile,
        (text) => stderr.line(problemLine("server", `warning: ${text}`)),
      );
    }
    if (options.operFile !== undefined) operators = await readOperators(options.operFile);
    if (options.motdFile !== undefined) motd = await readMotd(options.motdFile);
  } catch (error) {
    if (!(error instanceof StartError)) throw error;
    return await fail(error.message);
  }

  // The cluster first: a Redis that cannot be reached is said before a port is taken.
  let cluster: Cluster | null = null;
  if (options.cluster !== null) {
    try {
      cluster = await joinCluster(options.cluster, options.historyKeep);
    } catch (error) {
      if (!(error instanceof ClusterError || error instanceof StartError)) throw error;
      return await fail(error.message);
    }
  }

  // A throwaway certificate, for every TLS port (line, IRC, web), when asked for.
  let fingerprint: string | null = null;
  if (options.tlsSelfSigned) {
    try {
      const hostname = options.target.hostname ?? "127.0.0.1";
      const hosts = [...new Set([...DEFAULT_HOSTS, ...unspecified(hostname) ? [] : [hostname]])];
      const self = await makeSelfSigned(hosts);
      options.target.tls = { cert: self.cert, key: self.key };
      fingerprint = self.fingerprint;
    } catch (error) {
      if (!(error instanceof CertError)) throw error;
      await cluster?.close();
      return await fail(error.message);
    }
  }

  // Every port is bound before anything is served: one that cannot be ends the start.
  const listeners: Deno.Listener[] = [];
  let listener: Deno.Listener;
  let ircListener: Deno.Listener | null = null;
  let ircTlsListener: Deno.Listener | null = null;
  try {
    listeners.push(listener = await listen(options.target));
    // The nodes of a cluster on one machine share the IRC ports too.
    const { reusePort } = options.target;
    if (options.irc !== null) {
      listeners.push(ircListener = await listen({ ...options.irc, reusePort }));
    }
    if (options.ircTls !== null) {
      const { certFile, keyFile } = options.target;
      listeners.push(
        ircTlsListener = await listen({
          ...options.ircTls,
          certFile,
          keyFile,
          tls: options.target.tls,
          reusePort,
        }),
      );
    }
  } catch (error) {
    for (const bound of listeners) bound.close();
    if (!(error instanceof ListenError)) throw error;
    await cluster?.close();
    return await fail(error.message);
  }

  // Store events wait for the log, which starts with the "listening" line.
  const reporter = new StoreReporter();
  let store: Store;
  if (cluster !== null) {
    store = cluster.store;
  } else if (options.db === undefined) {
    store = new MemoryStore({ keep: options.historyKeep });
  } else {
    try {
      store = await SqliteStore.open(options.db, {
        keep: options.historyKeep,
        maxBytes: options.dbMaxSize,
        onEvent: reporter.record,
      });
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      for (const bound of listeners) bound.close();
      return await fail(error.message);
    }
  }

  // On a terminal: a prompt with line editing, the log above it, colours.
  // Otherwise (a pipe, a file, a service): plain lines, no escape codes.
  const io = processTerminal();
  const styler = new Styler({
    color: io !== null && !Deno.noColor && !options.json,
    colors: terminalColorDepth(),
  });
  const terminal = io === null ? null : new Terminal(io);
  const log = new ServerConsole(terminal?.out ?? stdout, { json: options.json, styler });
  const unguard = reportUnhandledRejections(log);
  const shutdown = new AbortController();
  const onInterrupt = () => {
    // A second Ctrl-C while draining: leave at once (the unload event restores the terminal).
    if (shutdown.signal.aborted) Deno.exit(130);
    shutdown.abort();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, onInterrupt);

  // Before the first client: the relay path compiled, not interpreted, when people use it.
  if (options.relay) await warmUp();

  const shared: ChatServerOptions = cluster === null
    ? {}
    : { bus: cluster, ids: cluster.ids, claims: cluster.claims };
  const server = new ChatServer(listener, {
    ...shared,
    relay: options.relay,
    defaultRoom: options.room,
    history: options.history,
    store,
    motd,
    password,
    maxClients: options.maxClients,
    maxPerAddress: options.maxPerAddress,
    lineTimeout: options.lineTimeout,
    maxLine: options.maxLine,
    sendQueue: options.sendQueue,
    idleTimeout: options.idleTimeout,
    flood: options.flood,
    access: options.access,
    drainTimeout: options.drainTimeout,
    log,
    signal: shutdown.signal,
  });
  reporter.attach(log);
  const irc = {
    serverName: options.serverName,
    sendQueue: options.sendQueue,
    drainTimeout: options.drainTimeout,
    lineTimeout: options.lineTimeout,
    operators,
  };
  if (ircListener !== null) server.serve(ircListener, ircTransport(server.core, irc));
  if (ircTlsListener !== null) {
    server.serve(ircTlsListener, ircTransport(server.core, { ...irc, tls: true }));
  }
  // After the listening line, which scripts read first.
  if (cluster !== null) log.event({ event: "cluster", message: cluster.joined });
  if (fingerprint !== null) log.event({ event: "tls", fingerprint });
  try {
    if (options.web !== null) {
      try {
        const { certFile, keyFile } = options.target;
        await WebServer.start(server, {
          ...options.web,
          tls: options.target.tls ??
            (certFile && keyFile ? await readTls(certFile, keyFile) : undefined),
          origins: options.webOrigins,
          maxLine: options.maxLine,
          sendQueue: options.sendQueue,
          drainTimeout: options.drainTimeout,
        });
      } catch (error) {
        if (!(error instanceof ListenError)) throw error;
        stderr.line(problemLine("server", error.message));
        await server.shutdown();
        await stderr.drained();
        return 1;
      }
    }
    // Not awaited: the console ending does not end the server.
    if (terminal === null) {
      void runOperatorConsole(server, log, Deno.stdin);
    } else {
      void terminal.start({
        line: (text) => operatorLine(server, log, text),
        interrupt: onInterrupt, // raw mode turns Ctrl-C into a key, not a signal
        eof: () => void server.shutdown(), // Ctrl-D, as in a shell
      }).catch((error) =>
        log.reply(`error: cannot read the terminal: ${(error as Error).message}`)
      );
    }
    await server.finished;
  } finally {
    // What the store could not write by now is reported as it closes.
    await store.close();
    reporter.close();
    await log.out.drained();
    await terminal?.close();
    for (const signal of signals) Deno.removeSignalListener(signal, onInterrupt);
    unguard();
  }
  return 0;
}

/** Reads the password and CA files the flags name, and joins the cluster. */
async function joinCluster(
  flags: NonNullable<ServerArgs["cluster"]>,
  historyKeep: number,
): Promise<Cluster> {
  const password = flags.passwordFile === undefined
    ? undefined
    : (await readFlagFile("--cluster-password-file", flags.passwordFile)).replace(/\r?\n$/, "");
  const ca = flags.caFile === undefined
    ? undefined
    : await readFlagFile("--cluster-ca", flags.caFile);
  return await Cluster.connect(flags.url, {
    node: flags.node,
    password,
    caCerts: ca === undefined ? undefined : [ca],
    historyKeep,
    nodeTimeout: flags.nodeTimeout,
  });
}

/** Whether `hostname` binds every address (then it names no host a certificate could). */
function unspecified(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::";
}

if (import.meta.main) Deno.exit(await main(Deno.args));
