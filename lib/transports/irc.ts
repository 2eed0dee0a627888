/**
 * The IRC transport: irssi, WeeChat, HexChat, ii, sic and bot libraries join
 * charla's rooms as channels (`#lobby` is the room `#lobby`) and talk with line
 * clients, under the same unique names.
 *
 * An {@linkcode IrcPeer} is one connection. Before registration it speaks IRC
 * on its own (CAP, PASS, NICK, USER, PING); once the nick is claimed through the
 * core, it is a {@linkcode Peer} like any other: channel lines go through the
 * core's hot path as a batch per read, commands run as typed
 * {@linkcode Command}s, and the core's typed events come back as IRC lines
 * (irc_format.ts has the translation rules). What IRC has and the core does
 * not (WHO, NAMES, LIST, MODE, USERHOST) reads the core's rooms and people.
 *
 * @module
 */

import { hostOf } from "../core/bans.ts";
import type { ChatCore } from "../core/chat.ts";
import { type CommandShare, CommandTime } from "../core/commands.ts";
import type { ChatEvent, Command, LineKind, RoomEvent } from "../core/messages.ts";
import { MAX_ROOMS_PER_PEER, MAX_TOPIC } from "../core/session.ts";
import type { Session } from "../core/session.ts";
import { RemotePerson } from "../core/remote.ts";
import type { Room } from "../core/room.ts";
import type { Peer } from "../core/peer.ts";
import type { ConnectionHandler, Refusal } from "../net/acceptor.ts";
import { type CloseReason, Connection, message, type ReadSink } from "../net/connection.ts";
import { VERSION } from "../version.ts";
import { sanitizeText } from "../wire/text.ts";
import {
  BASE_ISUPPORT,
  checkChannel,
  checkNick,
  foldCase,
  type IrcMessage,
  IrcParseError,
  isupportLines,
  MAX_CLIENT_TAG_BYTES,
  MAX_LINE_BYTES,
  type NumericName,
  NUMERICS,
  parseCtcp,
  parseMessage,
} from "./irc_message.ts";
import {
  type ErrorContext,
  errorNumeric,
  formatLine,
  formatModeChanges,
  historyLines,
  IrcFormat,
  listMatches,
  memberPrefix,
  type ModeChange,
  namesLines,
  numeric,
  OPERATOR_NICK,
  parseListFilters,
  parseModeChanges,
  stripFormatting,
  textMessages,
  whoxFields,
  wordLines,
} from "./irc_format.ts";
import { HeldInput } from "./held_input.ts";
import { renderEvent } from "./line_format.ts";

const encoder = new TextEncoder();
const CRLF = "\r\n";

/** The IRCv3 capabilities charla offers. */
export const CAPABILITIES: readonly string[] = [
  "echo-message",
  "multi-prefix",
  "server-time",
  "userhost-in-names",
];

/** Most targets of one PRIVMSG or NOTICE (TARGMAX). */
const MAX_TARGETS = 4;
/**
 * Longest line read from an IRC client: 4,094 bytes of tags and 512 of message.
 * Anything longer is answered with 417 as it streams in, never held.
 */
const MAX_INPUT = MAX_CLIENT_TAG_BYTES + 2 + MAX_LINE_BYTES;

/** Options of {@linkcode ircTransport}. */
export interface IrcTransportOptions {
  /**
   * The server's name: the source of numerics and the name in WHOIS.
   * @default {"charla"}
   */
  serverName?: string;
  /** Bytes queued past which an IRC client is behind. @default {1048576} */
  sendQueue?: number;
  /** Milliseconds a closing connection may take to write what is queued. @default {5000} */
  drainTimeout?: number;
  /**
   * Milliseconds a connection has to register (NICK, USER, and CAP END when
   * it began CAP negotiation) before it is closed.
   * @default {60000}
   */
  registrationTimeout?: number;
  /**
   * IRC operators, by name, with their passwords: `OPER <name> <password>`
   * gives the operator's power to disconnect people (KILL) and marks them `*`
   * in WHO. @default nobody
   */
  operators?: ReadonlyMap<string, string>;
  /**
   * Lines of the message of the day. @default the core's (`--motd`), or a
   * few lines about charla
   */
  motd?: readonly string[];
  /** Whether the listener speaks TLS: for the console's `listening` line. @default {false} */
  tls?: boolean;
  /**
   * Milliseconds a line may take from its first byte to its end, as on the
   * line port (`--line-timeout`); past it the client reads ERROR and is
   * closed. 0: no limit. @default {0}
   */
  lineTimeout?: number;
  /**
   * Server time a registered client's commands (all but PRIVMSG and NOTICE)
   * may take, in milliseconds per second and at once; past it, the rest of
   * that client's input waits. @default the line port's: 20 ms a second, 5 at once
   */
  commandTime?: CommandShare;
}

/** The message of the day, unless one is given. */
const DEFAULT_MOTD = [
  "charla: rooms shared by IRC, nc, telnet, client.ts and browser users.",
  "/list shows the rooms; line clients start in #lobby, so /join #lobby to meet them.",
  "A room's last lines are shown when you join it: as notices that say they are",
  "history, or with their time when your client asks for server-time.",
];

/** What every IRC connection to one core shares: the server's name, formats, opers. */
class IrcNetwork {
  readonly core: ChatCore;
  readonly name: string;
  readonly created = new Date();
  /** Encodes what rooms share, once per batch, for IRC members without and with server-time. */
  readonly plain: IrcFormat;
  readonly tagged: IrcFormat;
  readonly operators: ReadonlyMap<string, string>;
  readonly motd: readonly string[];
  readonly isupport: Readonly<Record<string, string | true>>;

  constructor(core: ChatCore, options: IrcTransportOptions) {
    this.core = core;
    this.name = options.serverName ?? "charla";
    this.operators = options.operators ?? new Map();
    this.motd = options.motd ?? (core.options.motd.length > 0 ? core.options.motd : DEFAULT_MOTD);
    const sourceOf = (who: { id: number; name: string }) => {
      const session = core.directory.get(who.id);
      return session === undefined
        ? `${who.name}!${who.name}@charla`
        : sourceFor(session, who.name);
    };
    const sourceOfName = (name: string) => {
      const session = core.directory.find(name);
      return session !== undefined && session.name === name
        ? sourceFor(session, name)
        : name === OPERATOR_NICK
        ? `${OPERATOR_NICK}!operator@${this.name}`
        : `${name}!${name}@charla`;
    };
    const shared = { server: this.name, sourceOf, sourceOfName };
    this.plain = new IrcFormat(shared);
    this.tagged = new IrcFormat({ ...shared, tagged: true });
    this.isupport = {
      ...BASE_ISUPPORT,
      PREFIX: "(ov)@+",
      CHANMODES: ",,,nst",
      CHANLIMIT: `#:${MAX_ROOMS_PER_PEER}`,
      TOPICLEN: String(MAX_TOPIC),
      AWAYLEN: String(MAX_TOPIC),
      NETWORK: this.name,
      TARGMAX:
        `JOIN:,PART:,NAMES:,LIST:,WHOIS:1,USERHOST:5,ISON:,PRIVMSG:${MAX_TARGETS},NOTICE:${MAX_TARGETS}`,
      ELIST: "MNU",
      SAFELIST: true,
      UTF8ONLY: true,
      WHOX: true,
    };
  }
}

/** The networks of each core: two IRC listeners of one server share formats. */
const networks = new WeakMap<ChatCore, IrcNetwork>();

function networkFor(core: ChatCore, options: IrcTransportOptions): IrcNetwork {
  const known = networks.get(core);
  if (known !== undefined && known.name === (options.serverName ?? "charla")) return known;
  const network = new IrcNetwork(core, options);
  networks.set(core, network);
  return network;
}

/** `nick!user@host` of a session under `name`: an IRC client's USER, or the name and transport. */
/** An IRC prefix for someone on another node of a cluster: `bea!bea@node-b`. */
function remoteSource(person: RemotePerson): string {
  return `${person.name}!${person.name}@${person.node.replace(/[^A-Za-z0-9.-]/g, "-")}`;
}

function sourceFor(session: Session, name = session.name): string {
  const peer = session.peer;
  return peer instanceof IrcPeer
    ? `${name}!${peer.user}@${peer.host}`
    : `${name}!${name}@${session.transport}`;
}

/** A username as IRC allows it in a prefix: `~` (not verified by ident) and safe characters. */
function cleanUser(user: string): string {
  const safe = user.replace(/[^A-Za-z0-9_.-]/g, "").slice(0, 16);
  return `~${safe === "" ? "user" : safe}`;
}

/** Options of {@linkcode IrcPeer}. */
interface IrcPeerOptions {
  /** `irc`, or `ircs` over TLS. @default {"irc"} */
  transport?: string;
  /** Bytes queued past which the client is behind. @default {1048576} */
  sendQueue?: number;
  /** Milliseconds a closing connection may take to write what is queued. @default {5000} */
  drainTimeout?: number;
  /** Milliseconds the client has to register before it is closed. @default {60000} */
  registrationTimeout?: number;
  /** See {@linkcode IrcTransportOptions.lineTimeout}. */
  lineTimeout?: number;
  /** See {@linkcode IrcTransportOptions.commandTime}. */
  commandTime?: CommandShare;
  /** Called once the connection is closed and forgotten. */
  onClosed?: () => void;
  /** Called once the client is registered (attached, named, welcomed). */
  onRegistered?: () => void;
}

/**
 * One IRC connection: registration, then a {@linkcode Peer} of the core. It
 * reads the connection (its read loop calls the {@linkcode ReadSink} methods).
 */
class IrcPeer implements Peer<Uint8Array>, ReadSink {
  /** What rooms send this peer: plain, or tagged with server-time. */
  format: IrcFormat;
  readonly transport: string;
  readonly singleRoom = false;
  /** The socket, at the level of lines. */
  readonly connection: Connection;
  /** What others see as this client's host: its transport (addresses are not shown). */
  readonly host: string;
  /** The person, once NICK and USER have come (null before). */
  session: Session | null = null;
  /** True from the 001 on. */
  registered = false;
  /** The USER name, as shown in prefixes (`~ana`). */
  user = "";
  /** The real name from USER. */
  realname = "";
  /** User mode `+i`: left out of WHO masks for people who share no room. */
  invisible = false;
  /** User mode `+o`: an IRC operator (see `OPER`). */
  oper = false;
  /** Capabilities enabled with CAP REQ. */
  readonly caps = new Set<string>();
  readonly #network: IrcNetwork;
  readonly #core: ChatCore;
  readonly #drainTimeout: number;
  readonly #onClosed: (() => void) | undefined;
  readonly #onRegistered: (() => void) | undefined;
  /** The nick asked for before registration. */
  #nick = "";
  /** The PASS given, if any. */
  #password: string | null = null;
  /** Set once the server password was given right (see {@linkcode ChatCore.verifyPassword}). */
  #passwordOk = false;
  /** True while the password is being checked: registration waits for the answer. */
  #checkingPassword = false;
  /** Whether USER came. */
  #userGiven = false;
  /** True between CAP LS/REQ and CAP END before registration: registration waits. */
  #negotiating = false;
  /** Closes a connection that does not register in time. */
  #registrationTimer: ReturnType<typeof setTimeout> | undefined;
  /** The command being handled: what error numerics are about. */
  #context: ErrorContext = { command: "" };
  /** Lines for this client alone, sent together at the end of the handler that made them. */
  #out: string[] = [];
  #flushScheduled = false;
  /**
   * Lines that arrived while a command finishes later (a name claimed in a
   * shared store), PASS is checked, or this client's commands wait for their
   * share of server time: they run after it, in order.
   */
  readonly #held = new HeldInput({
    mustWait: () => this.#commandWait(),
    handle: (line) => this.#handle(line),
    flushOut: () => this.#flushOut(),
    drained: () => this.session?.flush(),
    gone: () => false, // once the session is leaving, #handle ignores what is left
  });
  /** Server time this client's commands may still take. */
  readonly #commandTime: CommandTime;

  /** Starts reading an IRC connection for `network`'s core. */
  constructor(
    network: IrcNetwork,
    conn: Deno.Conn,
    options: IrcPeerOptions = {},
  ) {
    this.#network = network;
    this.#core = network.core;
    this.format = network.plain;
    this.transport = options.transport ?? "irc";
    this.host = this.transport;
    this.#drainTimeout = options.drainTimeout ?? 5000;
    this.#onClosed = options.onClosed;
    this.#onRegistered = options.onRegistered;
    this.#commandTime = new CommandTime(options.commandTime);
    this.connection = new Connection(conn, {
      maxLine: MAX_INPUT,
      sendQueue: options.sendQueue ?? 1024 * 1024,
      lineTimeout: options.lineTimeout,
      onBehind: (_, behind) => this.session?.setBehind(behind),
      // Behind on room lines alone holds the rooms (their heavy senders wait).
      onSharedBehind: (_, behind) => this.session?.setHolding(behind),
    });
    this.#registrationTimer = setTimeout(() => {
      this.#registrationTimer = undefined;
      this.#error("registration timed out");
    }, options.registrationTimeout ?? 60_000);
    this.connection.read(this);
  }

  get address(): string {
    return this.connection.remote;
  }

  get written(): number {
    return this.connection.written;
  }

  /** The nick numerics are addressed to: `*` until registered. */
  get nick(): string {
    return this.registered && this.session !== null ? this.session.name : "";
  }

  /** This client's `nick!user@host`. */
  get source(): string {
    return `${this.session?.name ?? this.#nick}!${this.user}@${this.host}`;
  }

  // --- Peer -------------------------------------------------------------------

  send(encoded: Uint8Array): void {
    this.#flushOut(); // what was delivered before goes first
    this.connection.send(encoded);
  }

  deliver(event: ChatEvent): void {
    const lines = this.registered ? this.#render(event) : this.#renderUnregistered(event);
    if (lines.length === 0) return;
    this.#out.push(...lines);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => {
        this.#flushScheduled = false;
        this.#flushOut();
      });
    }
  }

  echoes(_kind: LineKind): boolean {
    return this.caps.has("echo-message");
  }

  disconnect(reason: string, now = false): void {
    this.#flushOut(); // the ERROR goes before the end
    if (now) this.connection.close(reason);
    else void this.connection.end(reason, this.#drainTimeout);
  }

  // --- ReadSink ---------------------------------------------------------------

  line(buf: Uint8Array, start: number, end: number): void {
    const held = this.#held;
    if (!held.holding) {
      const wait = this.#commandWait();
      if (wait !== undefined) held.wait(wait);
    }
    if (held.holding) return held.push(buf, start, end);
    this.#handle(buf.subarray(start, end));
  }

  overlong(): void {
    this.#numeric("ERR_INPUTTOOLONG", ["Input line was too long"]);
  }

  lineTimedOut(ms: number): void {
    // The connection closes right after: what it says goes with what is queued.
    this.#reply(formatLine({
      command: "ERROR",
      params: [`Closing link: no end of line in ${ms / 1000} s`],
    }));
    this.#flushOut();
  }

  flush(): Promise<unknown> | undefined {
    // Replies to this read's commands go out now, so they count against this
    // client's own queue before deciding whether to read on.
    this.#flushOut();
    return this.#held.andHeld(this.session?.flush());
  }

  end(reason: CloseReason, error?: unknown): void {
    void this.#close(reason, error);
  }

  /** The read loop ended: the person leaves, what is queued is written, the socket closes. */
  async #close(reason: CloseReason, error?: unknown): Promise<void> {
    clearTimeout(this.#registrationTimer);
    this.#registrationTimer = undefined;
    const session = this.session;
    try {
      if (error !== undefined) {
        this.#core.log.event({ event: "error", peer: session, message: message(error) });
      }
      session?.closed(this.connection.reason ?? reason);
      this.#flushOut();
      await this.connection.end(reason, this.#drainTimeout);
    } catch (failure) {
      this.#core.log.event({ event: "error", peer: session, message: message(failure) });
    } finally {
      this.#commandTime.stop();
      this.connection.close();
      this.#onClosed?.();
    }
  }

  // --- output -----------------------------------------------------------------

  #flushOut(): void {
    if (this.#out.length === 0) return;
    const text = this.#out.join(CRLF) + CRLF;
    this.#out = [];
    // Direct: made for this client alone (replies, private messages); they
    // count against its own queue and hold no room (see Connection.send).
    this.connection.send(encoder.encode(text), true);
  }

  /** Queues lines for this client. */
  #reply(...lines: string[]): void {
    this.#out.push(...lines);
  }

  #numeric(name: NumericName, params: readonly string[]): void {
    this.#reply(numeric(this.#to, name, params));
  }

  /** A numeric by its code (`checkNick` and `checkChannel` give codes). */
  #numericCode(code: string, params: readonly string[]): void {
    const name = (Object.keys(NUMERICS) as NumericName[]).find((n) => NUMERICS[n] === code);
    if (name !== undefined) this.#numeric(name, params);
  }

  /** A NOTICE from the server to this client, split to fit. */
  #notice(text: string): void {
    const target = this.nick || "*";
    this.#reply(...textMessages({ source: this.#network.name, command: "NOTICE", target }, text));
  }

  get #to(): { server: string; nick: string } {
    return { server: this.#network.name, nick: this.nick };
  }

  /** Ends a connection that has not registered: the server shuts down. */
  refuse(text: string): void {
    if (!this.registered) this.#error(text);
  }

  /** Sends ERROR and closes: for a client refused before it registered. */
  #error(text: string): void {
    this.#reply(formatLine({ command: "ERROR", params: [`Closing link: ${text}`] }));
    this.#flushOut();
    if (this.session !== null) this.session.disconnect(text);
    else void this.connection.end(text, this.#drainTimeout);
  }

  // --- input ------------------------------------------------------------------

  /** One line from the client. */
  #handle(bytes: Uint8Array): void {
    let m: IrcMessage;
    try {
      m = parseMessage(bytes);
    } catch (error) {
      if (!(error instanceof IrcParseError)) throw error;
      return this.#refuseLine(error);
    }
    const session = this.session;
    if (session !== null && session.leaving !== null) return;
    const command = m.command;
    // Lines said in rooms wait in the core's batch; anything else goes after them.
    if (command !== "PRIVMSG" && command !== "NOTICE") this.#core.flushBatch();
    this.#context = { command, target: m.params[0] };
    if (this.registered && command !== "PING" && command !== "PONG" && session !== null) {
      session.lastActive = this.connection.lastActive; // the time of the read
    }
    // What people say is counted by the flood limit and costs microseconds;
    // any other command of a registered client is charged its server time.
    if (!this.registered || command === "PRIVMSG" || command === "NOTICE") return this.#dispatch(m);
    const started = performance.now();
    this.#dispatch(m);
    this.#commandTime.charge(started);
  }

  /** Runs one parsed line. */
  #dispatch(m: IrcMessage): void {
    const command = m.command;
    switch (command) {
      case "CAP":
        return this.#cap(m.params);
      case "PING":
        if (m.params.length === 0) return this.#numeric("ERR_NOORIGIN", ["No origin specified"]);
        return this.#reply(formatLine({
          source: this.#network.name,
          command: "PONG",
          params: [this.#network.name, m.params[0]],
        }));
      case "PONG":
        return;
      case "QUIT":
        if (!this.registered) return this.#error("quit");
        return this.#run({
          type: "quit",
          ...(m.params[0] ? { reason: stripFormatting(m.params[0]) } : {}),
        });
      case "PASS":
      case "USER":
        if (this.registered) {
          return this.#numeric("ERR_ALREADYREGISTERED", ["You may not reregister"]);
        }
        return command === "PASS" ? this.#pass(m.params) : this.#userCommand(m.params);
      case "NICK":
        return this.#nickCommand(m.params);
    }
    if (!this.registered) return this.#numeric("ERR_NOTREGISTERED", ["You have not registered"]);
    switch (command) {
      case "PRIVMSG":
      case "NOTICE":
        return this.#message(m.params, command === "NOTICE");
      case "JOIN":
        return this.#join(m.params);
      case "PART":
        return this.#part(m.params);
      case "TOPIC":
        return this.#topic(m.params);
      case "NAMES":
        return this.#names(m.params);
      case "LIST":
        return this.#list(m.params);
      case "WHO":
        return this.#who(m.params);
      case "WHOIS":
        return this.#whois(m.params);
      case "USERHOST":
        return this.#userhost(m.params);
      case "ISON":
        return this.#ison(m.params);
      case "AWAY":
        return this.#run(
          m.params[0] ? { type: "away", text: stripFormatting(m.params[0]) } : { type: "away" },
        );
      case "MODE":
        return this.#mode(m.params);
      case "OPER":
        return this.#operCommand(m.params);
      case "KILL":
        return this.#kill(m.params);
      case "MOTD":
        return this.#reply(...this.#motdLines());
      case "LUSERS":
        return this.#reply(...this.#lusersLines());
      case "VERSION":
        return this.#numeric("RPL_VERSION", [
          `charla-${VERSION}`,
          this.#network.name,
          "a chat server for IRC and line clients",
        ]);
      case "TIME":
        return this.#numeric("RPL_TIME", [this.#network.name, new Date().toString()]);
      case "KICK":
      case "INVITE":
      case "KNOCK":
        // Rooms here are open to all, and only the server's operator removes people.
        return this.#numeric("ERR_UNKNOWNCOMMAND", [command, "Not supported by charla"]);
      default:
        return this.#numeric("ERR_UNKNOWNCOMMAND", [command, "Unknown command"]);
    }
  }

  /** Answers a line that is not a valid IRC message. */
  #refuseLine(error: IrcParseError): void {
    switch (error.reason) {
      case "line-too-long":
      case "tags-too-long":
        return this.#numeric("ERR_INPUTTOOLONG", ["Input line was too long"]);
      case "invalid-utf8":
        return this.#reply(formatLine({
          source: this.#network.name,
          command: "FAIL",
          params: [error.command ?? "*", "INVALID_UTF8", "Message rejected: it is not UTF-8"],
        }));
      default:
        // Empty lines and garbage are ignored, as IRC servers do.
        return;
    }
  }

  /**
   * Runs a core command. One that finishes later (a name claimed in a shared
   * store) holds the input that follows until it has.
   */
  #run(command: Command, after?: () => void): void {
    const later = this.session!.run(command);
    if (!(later instanceof Promise)) return after?.();
    this.#held.until(later, after);
  }

  /**
   * Undefined when this client's next line may run now; otherwise a promise
   * that settles once its commands are back within their share of server time.
   */
  #commandWait(): Promise<void> | undefined {
    return this.session?.leaving !== null ? undefined : this.#commandTime.wait();
  }

  // --- registration -------------------------------------------------------------

  #cap(params: readonly string[]): void {
    const sub = (params[0] ?? "").toUpperCase();
    const nick = this.nick || "*";
    const cap = (...rest: string[]) =>
      this.#reply(
        formatLine({ source: this.#network.name, command: "CAP", params: [nick, ...rest] }),
      );
    switch (sub) {
      case "LS":
        if (!this.registered) this.#negotiating = true;
        return cap("LS", CAPABILITIES.join(" "));
      case "LIST":
        return cap("LIST", [...this.caps].join(" "));
      case "REQ": {
        if (!this.registered) this.#negotiating = true;
        const asked = params[1] ?? "";
        const names = asked.split(" ").filter((c) => c !== "");
        if (names.length === 0 || names.some((c) => !CAPABILITIES.includes(c.replace(/^-/, "")))) {
          return cap("NAK", asked);
        }
        for (const name of names) {
          if (name.startsWith("-")) this.caps.delete(name.slice(1));
          else this.caps.add(name);
        }
        this.#reformat();
        return cap("ACK", asked);
      }
      case "END":
        if (this.registered) return;
        this.#negotiating = false;
        return this.#tryRegister();
      case "":
        return this.#numeric("ERR_NEEDMOREPARAMS", ["CAP", "Not enough parameters"]);
      default:
        return this.#numeric("ERR_INVALIDCAPCMD", [params[0], "Invalid CAP command"]);
    }
  }

  /** Rooms send this client tagged or plain lines, as server-time says. */
  #reformat(): void {
    const format = this.caps.has("server-time") ? this.#network.tagged : this.#network.plain;
    if (format === this.format) return;
    const from = this.format;
    this.format = format;
    const session = this.session;
    if (session !== null) { for (const room of session.rooms) room.reformat(session, from); }
  }

  #pass(params: readonly string[]): void {
    if (params[0] === undefined) {
      return this.#numeric("ERR_NEEDMOREPARAMS", ["PASS", "Not enough parameters"]);
    }
    this.#password = params[0];
  }

  #userCommand(params: readonly string[]): void {
    if (params.length < 4 || params[0] === "" || params[3] === "") {
      return this.#numeric("ERR_NEEDMOREPARAMS", ["USER", "Not enough parameters"]);
    }
    this.user = cleanUser(params[0]);
    // Shown to others in WHO and WHOIS: plain, safe and short.
    this.realname = sanitizeText(stripFormatting(params[3])).slice(0, 100);
    this.#userGiven = true;
    this.#tryRegister();
  }

  #nickCommand(params: readonly string[]): void {
    const name = params[0] ?? "";
    const problem = checkNick(name);
    if (problem !== null) return this.#numericCode(problem.numeric, [name || "*", problem.text]);
    if (!this.registered) {
      this.#nick = name;
      return this.#tryRegister();
    }
    this.#context = { command: "NICK", target: name };
    this.#run({ type: "nick", name });
  }

  /** Registers once NICK, USER (and CAP END, when CAP began) have come. */
  #tryRegister(): void {
    if (
      this.registered || this.#nick === "" || !this.#userGiven || this.#negotiating ||
      this.#checkingPassword
    ) return;
    const core = this.#core;
    if (core.closing) return this.#error("server shutting down");
    if (core.passwordRequired && !this.#passwordOk) return this.#checkPassword();
    // Attached once; a refused nick leaves it attached under its default name,
    // waiting for another NICK.
    this.session ??= core.attach(this);
    const session = this.session;
    const nick = this.#nick;
    this.#context = { command: "NICK", target: nick };
    this.#run({ type: "nick", name: nick }, () => {
      if (this.registered || session.leaving !== null) return;
      if (session.name === nick) this.#welcome();
      // Refused (433, 432): registration waits for another NICK, not for USER again.
      else this.#nick = "";
    });
  }

  /**
   * Checks PASS the way every transport does (a delay when wrong, throttling
   * by address); lines that come meanwhile wait, and registration goes on
   * once it is right.
   */
  #checkPassword(): void {
    this.#checkingPassword = true;
    const given = this.#password;
    const host = hostOf(this.address) ?? this.address;
    this.#held.until(this.#core.verifyPassword(host, given), (verdict) => {
      this.#checkingPassword = false;
      if (this.connection.reason !== null) return false; // gone meanwhile
      if (!verdict.ok) {
        this.#core.log.event({
          event: "refused",
          address: this.address,
          reason: verdict.reason === "wrong" ? "wrong password" : "too many wrong passwords",
        });
        this.#numeric("ERR_PASSWDMISMATCH", [
          verdict.reason === "throttled"
            ? verdict.text
            : given === null
            ? "This server needs a password (PASS)"
            : "Password incorrect",
        ]);
        this.#error("bad password");
        return false;
      }
      this.#passwordOk = true;
      // A name claimed later (a cluster) holds input again: what waited goes first.
      this.#tryRegister();
      return true;
    });
  }

  #welcome(): void {
    clearTimeout(this.#registrationTimer);
    this.#registrationTimer = undefined;
    this.registered = true;
    this.#onRegistered?.();
    this.#core.welcome(this.session!);
  }

  /** 001 to 005, LUSERS and the MOTD. */
  #welcomeLines(): string[] {
    const net = this.#network;
    const to = this.#to;
    return [
      numeric(to, "RPL_WELCOME", [`Welcome to charla, ${this.source}`]),
      numeric(to, "RPL_YOURHOST", [`Your host is ${net.name}, running charla-${VERSION}`]),
      numeric(to, "RPL_CREATED", [`This server was created ${net.created.toUTCString()}`]),
      numeric(to, "RPL_MYINFO", [net.name, `charla-${VERSION}`, "io", "nostv", "ov"]),
      ...isupportLines(net.isupport, to).map((m) => formatLine(m)),
      ...this.#lusersLines(),
      ...this.#motdLines(),
    ];
  }

  #lusersLines(): string[] {
    const core = this.#core;
    const to = this.#to;
    const people = core.size;
    let rooms = 0;
    for (const _ of core.rooms()) rooms++;
    return [
      numeric(to, "RPL_LUSERCLIENT", [`There are ${people} users and 0 invisible on 1 servers`]),
      numeric(to, "RPL_LUSERCHANNELS", [String(rooms), "channels formed"]),
      numeric(to, "RPL_LUSERME", [`I have ${people} clients and 0 servers`]),
    ];
  }

  #motdLines(): string[] {
    const net = this.#network;
    const to = this.#to;
    return [
      numeric(to, "RPL_MOTDSTART", [`- ${net.name} Message of the day -`]),
      ...net.motd.map((line) => numeric(to, "RPL_MOTD", [`- ${line}`])),
      numeric(to, "RPL_ENDOFMOTD", ["End of /MOTD command."]),
    ];
  }

  // --- messages -----------------------------------------------------------------

  #message(params: readonly string[], notice: boolean): void {
    const command = notice ? "NOTICE" : "PRIVMSG";
    const [targets, text] = params;
    if (targets === undefined || targets === "") {
      if (!notice) this.#numeric("ERR_NORECIPIENT", [`No recipient given (${command})`]);
      return;
    }
    if (text === undefined || text === "") {
      if (!notice) this.#numeric("ERR_NOTEXTTOSEND", ["No text to send"]);
      return;
    }
    for (const target of targets.split(",").slice(0, MAX_TARGETS)) {
      this.#context = { command, target };
      if (target.startsWith("#")) this.#toRoom(target, text, notice);
      else this.#toPerson(target, text, notice);
    }
  }

  /** A line said in a room: the hot path, through the core's batch. */
  #toRoom(name: string, text: string, notice: boolean): void {
    const session = this.session!;
    const room = this.#core.findRoom(name);
    if (room === undefined) {
      if (!notice) this.#numeric("ERR_NOSUCHCHANNEL", [name, "No such channel"]);
      return;
    }
    if (!room.members.has(session)) {
      if (!notice) {
        this.#numeric("ERR_CANNOTSENDTOCHAN", [name, "Cannot send to channel (join it first)"]);
      }
      return;
    }
    let kind: LineKind = notice ? "notice" : "message";
    let body = text;
    const ctcp = parseCtcp(text);
    if (ctcp !== null) {
      if (ctcp.command !== "ACTION" || notice) {
        if (!notice) this.#notice(`CTCP ${ctcp.command} is not relayed to rooms`);
        return;
      }
      kind = "action";
      body = ctcp.params;
    }
    const bytes = encoder.encode(stripFormatting(body));
    session.sayIn(room, bytes, 0, bytes.length, kind);
  }

  /** A private message: through the core, or (CTCP between IRC clients) as it is. */
  #toPerson(target: string, text: string, notice: boolean): void {
    const ctcp = parseCtcp(text);
    const to = foldCase(target) === OPERATOR_NICK ? OPERATOR_NICK : this.#person(target)?.name;
    if (to === undefined) {
      if (!notice) this.#numeric("ERR_NOSUCHNICK", [target, "No such nick/channel"]);
      return;
    }
    if (foldCase(to) === foldCase(this.nick)) {
      // To yourself: back as it was sent (the core has no one to deliver it to).
      return this.#reply(formatLine({
        source: this.source,
        command: notice ? "NOTICE" : "PRIVMSG",
        params: [this.nick, text],
      }));
    }
    const kind = notice ? { notice: true } : {};
    if (ctcp === null) return this.#run({ type: "msg", to, text: stripFormatting(text), ...kind });
    if (ctcp.command === "ACTION" && !notice) {
      return this.#run({ type: "msg", to, text: stripFormatting(ctcp.params), action: true });
    }
    // Other CTCP (VERSION, PING, TIME and their answers) goes between IRC
    // clients as it is; line clients have nothing to answer with. DCC would
    // tell the other side an address, which charla never does.
    const found = this.#person(target);
    const person = found instanceof RemotePerson ? undefined : found;
    const peer = person?.peer;
    if (peer instanceof IrcPeer && ctcp.command !== "DCC") {
      if (!person!.ignores(this.session!)) peer.#relayRaw(this.source, notice, text);
      return;
    }
    if (!notice) {
      const why = ctcp.command === "DCC" ? "DCC is not relayed" : `${to} does not use IRC`;
      this.#notice(`CTCP ${ctcp.command} to ${to} not relayed: ${why}`);
    }
  }

  /** A CTCP from another IRC client, as it was sent. */
  #relayRaw(source: string, notice: boolean, text: string): void {
    this.#reply(formatLine({
      source,
      command: notice ? "NOTICE" : "PRIVMSG",
      params: [this.nick, text],
    }));
    this.#flushOut();
  }

  /**
   * The person called `name` under IRC's ASCII case mapping: the core also
   * folds look-alikes (`rn` and `m`), which must not make a message to
   * `rnallory` reach `mallory`.
   */
  #person(name: string): Session | RemotePerson | undefined {
    // In a cluster, someone on another node (RemotePerson) is reached through the core too.
    const found = this.#core.findPerson(name);
    return found !== undefined && foldCase(found.name) === foldCase(name) ? found : undefined;
  }

  // --- rooms --------------------------------------------------------------------

  #join(params: readonly string[]): void {
    const session = this.session!;
    const list = params[0];
    if (list === undefined || list === "") {
      return this.#numeric("ERR_NEEDMOREPARAMS", ["JOIN", "Not enough parameters"]);
    }
    if (list === "0") {
      for (const room of [...session.rooms]) this.#run({ type: "part", room: room.name });
      return;
    }
    for (const name of list.split(",")) {
      if (name === "") continue;
      this.#context = { command: "JOIN", target: name };
      const problem = checkChannel(name);
      if (problem !== null) {
        this.#numericCode(problem.numeric, [name, problem.text]);
        continue;
      }
      const room = this.#core.findRoom(name);
      if (room !== undefined && room.members.has(session)) continue; // IRC says nothing
      this.#run({ type: "join", room: name });
    }
  }

  #part(params: readonly string[]): void {
    const list = params[0];
    if (list === undefined || list === "") {
      return this.#numeric("ERR_NEEDMOREPARAMS", ["PART", "Not enough parameters"]);
    }
    for (const name of list.split(",")) {
      this.#context = { command: "PART", target: name };
      const room = this.#visibleRoom(name);
      if (room === undefined) {
        this.#numeric("ERR_NOSUCHCHANNEL", [name, "No such channel"]);
        continue;
      }
      if (!room.members.has(this.session!)) {
        this.#numeric("ERR_NOTONCHANNEL", [name, "You're not on that channel"]);
        continue;
      }
      const reason = params[1] === undefined ? undefined : stripFormatting(params[1]);
      this.#run(
        reason ? { type: "part", room: room.name, reason } : { type: "part", room: room.name },
      );
    }
  }

  /** The room called `name`, unless it is secret and this client is not in it. */
  #visibleRoom(name: string): Room | undefined {
    const room = this.#core.findRoom(name);
    return room !== undefined && (!room.secret || room.members.has(this.session!))
      ? room
      : undefined;
  }

  #topic(params: readonly string[]): void {
    const name = params[0];
    if (name === undefined) {
      return this.#numeric("ERR_NEEDMOREPARAMS", ["TOPIC", "Not enough parameters"]);
    }
    const room = this.#visibleRoom(name);
    if (room === undefined) return this.#numeric("ERR_NOSUCHCHANNEL", [name, "No such channel"]);
    const member = room.members.has(this.session!);
    if (params.length === 1) {
      if (!member && room.secret) {
        return this.#numeric("ERR_NOTONCHANNEL", [name, "You're not on that channel"]);
      }
      return this.#reply(...this.#topicLines(room, true));
    }
    if (!member) return this.#numeric("ERR_NOTONCHANNEL", [name, "You're not on that channel"]);
    this.#run({ type: "topic", room: room.name, text: stripFormatting(params[1]) });
  }

  /** 332 and 333, or (asked for) 331. */
  #topicLines(room: Room, asked: boolean): string[] {
    const to = this.#to;
    if (room.topic === "") {
      return asked ? [numeric(to, "RPL_NOTOPIC", [room.name, "No topic is set"])] : [];
    }
    return [
      numeric(to, "RPL_TOPIC", [room.name, room.topic]),
      numeric(to, "RPL_TOPICWHOTIME", [
        room.name,
        room.topicBy || this.#network.name,
        String(Math.floor(room.topicTime / 1000)),
      ]),
    ];
  }

  /** A member's name in NAMES: prefixes, and `nick!user@host` with userhost-in-names. */
  #memberName(room: Room, member: Session): string {
    const prefix = memberPrefix(
      room.operators.has(member),
      room.voiced.has(member),
      this.caps.has("multi-prefix"),
    );
    return prefix + (this.caps.has("userhost-in-names") ? sourceFor(member) : member.name);
  }

  /** 353 lines for a room (no 366): what JOIN and NAMES show. */
  #namesOf(room: Room): string[] {
    const names = [...room.members].map((member) => this.#memberName(room, member));
    for (const person of room.remote) {
      names.push(this.caps.has("userhost-in-names") ? remoteSource(person) : person.name);
    }
    return namesLines(this.#to, room.name, room.secret ? "@" : "=", names, null);
  }

  #names(params: readonly string[]): void {
    const to = this.#to;
    const list = params[0];
    if (list === undefined || list === "") {
      for (const room of this.#core.rooms()) {
        if (!room.secret || room.members.has(this.session!)) this.#reply(...this.#namesOf(room));
      }
      return this.#numeric("RPL_ENDOFNAMES", ["*", "End of /NAMES list"]);
    }
    for (const name of list.split(",")) {
      const room = this.#visibleRoom(name);
      if (room !== undefined) this.#reply(...this.#namesOf(room));
    }
    this.#reply(numeric(to, "RPL_ENDOFNAMES", [list, "End of /NAMES list"]));
  }

  #list(params: readonly string[]): void {
    const filters = parseListFilters(params[0] ?? "");
    this.#numeric("RPL_LISTSTART", ["Channel", "Users  Name"]);
    for (const room of this.#core.rooms()) {
      if (room.secret && !room.members.has(this.session!)) continue;
      if (!listMatches(filters, room.name, room.size)) continue;
      this.#numeric("RPL_LIST", [room.name, String(room.size), room.topic]);
    }
    this.#numeric("RPL_LISTEND", ["End of /LIST"]);
  }

  // --- people -------------------------------------------------------------------

  /** The WHO flags of a person: here or gone, operator, and their rank in `room`. */
  #flags(person: Session, room?: Room): string {
    const peer = person.peer;
    let flags = person.away === null ? "H" : "G";
    if (peer instanceof IrcPeer && peer.oper) flags += "*";
    if (room !== undefined) {
      flags += memberPrefix(
        room.operators.has(person),
        room.voiced.has(person),
        this.caps.has("multi-prefix"),
      );
    }
    return flags;
  }

  #who(params: readonly string[]): void {
    const mask = params[0] || "*";
    const whox = /^%([a-z]*)(?:,(.{0,3}))?$/.exec(params[1] ?? "");
    const me = this.session!;
    const core = this.#core;
    const rows: { person: Session; room?: Room }[] = [];
    if (mask.startsWith("#")) {
      const room = this.#visibleRoom(mask);
      if (room !== undefined) { for (const person of room.members) rows.push({ person, room }); }
    } else {
      const exact = !/[*?]/.test(mask) && mask !== "0";
      const pattern = mask === "0" ? "*" : mask;
      for (const person of core.directory.entries()) {
        if (!matchName(pattern, person.name)) continue;
        const peer = person.peer;
        // +i hides someone from masks, not from their nick, nor from who shares a room.
        if (
          !exact && person !== me && peer instanceof IrcPeer && peer.invisible &&
          !person.rooms.some((room) => room.members.has(me))
        ) continue;
        rows.push({ person });
      }
    }
    for (const { person, room } of rows) {
      const peer = person.peer;
      const who = {
        channel: room?.name ?? "*",
        user: peer instanceof IrcPeer ? peer.user : person.name,
        host: peer instanceof IrcPeer ? peer.host : person.transport,
        server: this.#network.name,
        nick: person.name,
        flags: this.#flags(person, room),
        idleSeconds: Math.floor((performance.now() - person.lastActive) / 1000),
        realname: realnameOf(person),
      };
      if (whox !== null) {
        this.#numeric("RPL_WHOSPCRPL", whoxFields(whox[1], whox[2] ?? "", who));
      } else {
        this.#numeric("RPL_WHOREPLY", [
          who.channel,
          who.user,
          who.host,
          who.server,
          who.nick,
          who.flags,
          `0 ${who.realname}`,
        ]);
      }
    }
    this.#numeric("RPL_ENDOFWHO", [mask, "End of WHO list"]);
  }

  #whois(params: readonly string[]): void {
    const asked = (params.length >= 2 ? params[1] : params[0] ?? "").split(",")[0];
    if (asked === "") return this.#numeric("ERR_NONICKNAMEGIVEN", ["No nickname given"]);
    this.#context = { command: "WHOIS", target: asked };
    const person = this.#person(asked);
    if (person === undefined) {
      this.#numeric("ERR_NOSUCHNICK", [asked, "No such nick/channel"]);
      return this.#numeric("RPL_ENDOFWHOIS", [asked, "End of /WHOIS list"]);
    }
    this.#run({ type: "whois", name: person.name });
  }

  #userhost(params: readonly string[]): void {
    const replies: string[] = [];
    for (const name of params.slice(0, 5)) {
      const person = this.#person(name);
      if (person === undefined) continue;
      const peer = person instanceof RemotePerson ? undefined : person.peer;
      const oper = peer instanceof IrcPeer && peer.oper ? "*" : "";
      const user = peer instanceof IrcPeer ? peer.user : person.name;
      const host = peer instanceof IrcPeer ? peer.host : person.transport;
      replies.push(`${person.name}${oper}=${person.away === null ? "+" : "-"}${user}@${host}`);
    }
    this.#numeric("RPL_USERHOST", [replies.join(" ")]);
  }

  #ison(params: readonly string[]): void {
    const online = params.flatMap((p) => p.split(" ")).filter((n) => n !== "")
      .map((n) => this.#person(n)?.name).filter((n) => n !== undefined);
    this.#numeric("RPL_ISON", [online.join(" ")]);
  }

  // --- modes and operators --------------------------------------------------------

  #mode(params: readonly string[]): void {
    const target = params[0];
    if (target === undefined || target === "") {
      return this.#numeric("ERR_NEEDMOREPARAMS", ["MODE", "Not enough parameters"]);
    }
    if (target.startsWith("#")) this.#roomMode(target, params.slice(1));
    else this.#userMode(target, params.slice(1));
  }

  #userMode(target: string, params: readonly string[]): void {
    if (foldCase(target) !== foldCase(this.nick)) {
      return this.#person(target) === undefined
        ? this.#numeric("ERR_NOSUCHNICK", [target, "No such nick/channel"])
        : this.#numeric("ERR_USERSDONTMATCH", ["Can't change mode for other users"]);
    }
    if (params.length === 0) return this.#numeric("RPL_UMODEIS", [this.#userModes()]);
    const applied: ModeChange[] = [];
    let unknown = false;
    for (const change of parseModeChanges(params)) {
      const on = change.sign === "+";
      if (change.mode === "i") {
        if (this.invisible !== on) applied.push(change);
        this.invisible = on;
      } else if (change.mode === "o") {
        // Only OPER makes an operator; anyone may stop being one.
        if (!on && this.oper) {
          this.oper = false;
          applied.push(change);
        }
      } else unknown = true;
    }
    if (unknown) this.#numeric("ERR_UMODEUNKNOWNFLAG", ["Unknown MODE flag"]);
    if (applied.length > 0) {
      this.#reply(formatLine({
        source: this.source,
        command: "MODE",
        params: [this.nick, ...formatModeChanges(applied)],
      }));
    }
  }

  #userModes(): string {
    return `+${this.invisible ? "i" : ""}${this.oper ? "o" : ""}`;
  }

  #roomMode(name: string, params: readonly string[]): void {
    const room = this.#visibleRoom(name);
    if (room === undefined) return this.#numeric("ERR_NOSUCHCHANNEL", [name, "No such channel"]);
    this.#context = { command: "MODE", target: room.name };
    if (params.length === 0) {
      const modes = `+n${room.secret ? "s" : ""}${room.topicLocked ? "t" : ""}`;
      this.#numeric("RPL_CHANNELMODEIS", [room.name, modes]);
      return this.#numeric("RPL_CREATIONTIME", [
        room.name,
        String(Math.floor(room.created / 1000)),
      ]);
    }
    const changes = parseModeChanges(params);
    // Lists (bans, exceptions, invitations) are always empty here: asking is fine.
    const lists = changes.filter((c) => "beI".includes(c.mode) && c.arg === undefined);
    for (const list of new Set(lists.map((c) => c.mode))) {
      if (list === "b") this.#numeric("RPL_ENDOFBANLIST", [room.name, "End of channel ban list"]);
      if (list === "e") this.#numeric("RPL_ENDOFEXCEPTLIST", [room.name, "End of exception list"]);
      if (list === "I") this.#numeric("RPL_ENDOFINVITELIST", [room.name, "End of invite list"]);
    }
    const wanted = changes.filter((c) => !lists.includes(c));
    if (wanted.length === 0) return;
    const me = this.session!;
    if (!room.members.has(me)) {
      return this.#numeric("ERR_NOTONCHANNEL", [room.name, "You're not on that channel"]);
    }
    if (!room.operators.has(me)) {
      return this.#numeric("ERR_CHANOPRIVSNEEDED", [room.name, "You're not channel operator"]);
    }
    const applied: ModeChange[] = [];
    for (const change of wanted) {
      const on = change.sign === "+";
      switch (change.mode) {
        case "n": // always on: nobody outside a room can say anything in it
          break;
        case "t":
          if (room.topicLocked !== on) applied.push(change);
          room.topicLocked = on;
          break;
        case "s":
          if (room.secret !== on) applied.push(change);
          room.secret = on;
          break;
        case "o":
        case "v": {
          if (change.arg === undefined) {
            this.#numeric("ERR_NEEDMOREPARAMS", ["MODE", "Not enough parameters"]);
            break;
          }
          const person = this.#person(change.arg);
          if (person === undefined) {
            this.#numeric("ERR_NOSUCHNICK", [change.arg, "No such nick/channel"]);
            break;
          }
          // Channel ranks are this node's: someone on another node cannot be given one.
          if (person instanceof RemotePerson || !room.members.has(person)) {
            this.#numeric("ERR_USERNOTINCHANNEL", [
              person.name,
              room.name,
              "They aren't on that channel",
            ]);
            break;
          }
          const set = change.mode === "o" ? room.operators : room.voiced;
          if (set.has(person) !== on) applied.push({ ...change, arg: person.name });
          if (on) set.add(person);
          else set.delete(person);
          break;
        }
        default:
          this.#numeric("ERR_UNKNOWNMODE", [change.mode, "is unknown mode char to me"]);
      }
    }
    if (applied.length === 0) return;
    // Line clients have no modes to show; the IRC members see the change.
    const line = encoder.encode(
      formatLine({
        source: this.source,
        command: "MODE",
        params: [room.name, ...formatModeChanges(applied)],
      }) + CRLF,
    );
    for (const member of room.members) {
      if (member.peer instanceof IrcPeer) member.peer.send(line);
    }
  }

  #operCommand(params: readonly string[]): void {
    if (params.length < 2) {
      return this.#numeric("ERR_NEEDMOREPARAMS", ["OPER", "Not enough parameters"]);
    }
    const operators = this.#network.operators;
    if (operators.size === 0) return this.#numeric("ERR_NOOPERHOST", ["No O-lines for your host"]);
    const password = operators.get(params[0]);
    if (password === undefined || !sameSecret(password, params[1])) {
      return this.#numeric("ERR_PASSWDMISMATCH", ["Password incorrect"]);
    }
    if (!this.oper) {
      this.oper = true;
      this.#numeric("RPL_YOUREOPER", ["You are now an IRC operator"]);
      this.#reply(formatLine({ source: this.source, command: "MODE", params: [this.nick, "+o"] }));
    }
  }

  #kill(params: readonly string[]): void {
    if (!this.oper) {
      return this.#numeric("ERR_NOPRIVILEGES", ["Permission Denied- You're not an IRC operator"]);
    }
    const [name, reason] = params;
    if (name === undefined) {
      return this.#numeric("ERR_NEEDMOREPARAMS", ["KILL", "Not enough parameters"]);
    }
    const person = this.#person(name);
    if (person === undefined) {
      return this.#numeric("ERR_NOSUCHNICK", [name, "No such nick/channel"]);
    }
    this.#core.kick(`#${person.id}`, `${reason ?? ""} (by ${this.nick})`.trim());
  }

  // --- events -------------------------------------------------------------------

  /** Before 001: only refusals and the end are shown. */
  #renderUnregistered(event: ChatEvent): string[] {
    if (event.type === "closing") {
      return [formatLine({ command: "ERROR", params: [`Closing link: ${event.text}`] })];
    }
    if (event.type !== "error") return [];
    // The core says "…; you are still user7": no client asked to be user7.
    const text = event.text.replace(/; you are still \S+$/, "");
    const line = errorNumeric(this.#to, event.code, text, this.#context);
    return line === null ? [] : [line];
  }

  /** An event for this client alone, as IRC lines. */
  #render(event: ChatEvent): string[] {
    const to = this.#to;
    const context = this.#context;
    switch (event.type) {
      case "message":
      case "action":
      case "broadcast":
      case "join":
      case "part":
      case "quit":
      case "nick":
      case "topic":
        return this.format.eventLines(event as RoomEvent);
      case "private":
        return this.#privateLines(event);
      case "welcome":
        return this.#welcomeLines();
      case "motd":
        return []; // IRC shows it in the welcome, as its MOTD (375, 372, 376)
      case "renamed":
        return [
          formatLine({
            source: `${event.from}!${this.user}@${this.host}`,
            command: "NICK",
            params: [event.you.name],
          }),
        ];
      case "joined": {
        const room = this.#core.findRoom(event.room);
        const lines = [formatLine({ source: this.source, command: "JOIN", params: [event.room] })];
        if (room === undefined) return lines;
        lines.push(...this.#topicLines(room, false), ...this.#namesOf(room));
        lines.push(numeric(to, "RPL_ENDOFNAMES", [room.name, "End of /NAMES list"]));
        return lines;
      }
      case "parted":
        return [
          formatLine({
            source: this.source,
            command: "PART",
            params: event.reason === undefined ? [event.room] : [event.room, event.reason],
          }),
        ];
      case "whois":
        return this.#whoisLines(event);
      case "topic_is": {
        const room = this.#core.findRoom(event.room);
        return room === undefined ? [] : this.#topicLines(room, true);
      }
      case "history": {
        const clock = (ms: number) => {
          const d = new Date(ms);
          return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
        };
        return historyLines(event.lines, {
          ...to,
          channel: event.room,
          serverTime: this.caps.has("server-time"),
          clock,
        });
      }
      case "away_is":
        return [numeric(to, "RPL_AWAY", [event.who.name, event.text])];
      case "away":
        return event.text === undefined
          ? [numeric(to, "RPL_UNAWAY", ["You are no longer marked as being away"])]
          : [numeric(to, "RPL_NOWAWAY", ["You have been marked as being away"])];
      case "closing":
        return [formatLine({ command: "ERROR", params: [`Closing link: ${event.text}`] })];
      case "error": {
        if (context.command === "NOTICE") return []; // nothing answers a NOTICE
        const line = errorNumeric(to, event.code, event.text, context);
        return line !== null ? [line] : this.#noticeLines(event.text);
      }
      case "info":
        // "you are already ana": IRC says nothing to a NICK that changes nothing.
        if (context.command === "NICK") return [];
        return this.#noticeLines(event.text);
      default:
        // who, rooms, ignoring: IRC has its own commands; what the core says is shown as it is.
        return renderEvent(event).flatMap((text) => this.#noticeLines(text.replace(/^\* /, "")));
    }
  }

  #noticeLines(text: string): string[] {
    return textMessages({
      source: this.#network.name,
      command: "NOTICE",
      target: this.nick || "*",
    }, text);
  }

  #privateLines(event: Extract<ChatEvent, { type: "private" }>): string[] {
    if (event.echo && !this.caps.has("echo-message")) return [];
    const source = event.echo
      ? this.source
      : event.from === null
      ? this.format.operatorSource
      : sourceOfWho(this.#core, event.from);
    const target = event.echo ? (event.to?.name ?? OPERATOR_NICK) : this.nick;
    return textMessages({
      source,
      command: event.notice ? "NOTICE" : "PRIVMSG",
      target,
      action: event.action,
      ...(this.caps.has("server-time") ? { time: event.time } : {}),
    }, event.text);
  }

  #whoisLines(event: Extract<ChatEvent, { type: "whois" }>): string[] {
    const to = this.#to;
    const person = this.#core.directory.get(event.who.id);
    const peer = person?.peer;
    const irc = peer instanceof IrcPeer ? peer : null;
    const name = event.who.name;
    const lines = [
      numeric(to, "RPL_WHOISUSER", [
        name,
        irc?.user ?? name,
        irc?.host ?? event.transport,
        "*",
        person === undefined ? name : realnameOf(person),
      ]),
    ];
    const me = this.session!;
    const rooms: string[] = [];
    for (const roomName of event.rooms) {
      const room = this.#core.findRoom(roomName);
      if (room === undefined || person === undefined) continue;
      // Someone invisible (+i) shows only the rooms shared with whoever asks.
      if (irc?.invisible && person !== me && !room.members.has(me)) continue;
      rooms.push(
        memberPrefix(
          room.operators.has(person),
          room.voiced.has(person),
          this.caps.has("multi-prefix"),
        ) + room.name,
      );
    }
    if (rooms.length > 0) lines.push(...wordLines(to, "RPL_WHOISCHANNELS", [name], rooms));
    lines.push(
      numeric(to, "RPL_WHOISSERVER", [name, this.#network.name, `charla, via ${event.transport}`]),
    );
    if (event.away !== undefined) lines.push(numeric(to, "RPL_AWAY", [name, event.away]));
    if (irc?.oper) lines.push(numeric(to, "RPL_WHOISOPERATOR", [name, "is an IRC operator"]));
    const address = event.address ?? (this.oper ? person?.address : undefined);
    if (address !== undefined) {
      lines.push(numeric(to, "RPL_WHOISHOST", [name, `is connecting from ${address}`]));
    }
    lines.push(numeric(to, "RPL_WHOISIDLE", [
      name,
      String(event.idleSeconds),
      String(Math.floor(event.since / 1000)),
      "seconds idle, signon time",
    ]));
    lines.push(numeric(to, "RPL_ENDOFWHOIS", [this.#context.target ?? name, "End of /WHOIS list"]));
    return lines;
  }
}

/** The real name WHO and WHOIS show: an IRC client's, or how a line or web user is connected. */
function realnameOf(person: Session): string {
  const peer = person.peer;
  return peer instanceof IrcPeer ? peer.realname : `via ${person.transport}`;
}

/** `nick!user@host` of a person in an event. */
function sourceOfWho(core: ChatCore, who: { id: number; name: string }): string {
  const session = core.directory.get(who.id);
  return session === undefined ? `${who.name}!${who.name}@charla` : sourceFor(session, who.name);
}

/** Whether `name` matches a WHO mask (a nick, or with `*` and `?`), ignoring ASCII case. */
function matchName(mask: string, name: string): boolean {
  if (!/[*?]/.test(mask)) return foldCase(mask) === foldCase(name);
  const pattern = foldCase(mask).replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${pattern}$`).test(foldCase(name));
}

/** Compares two secrets in time that does not depend on where they differ. */
function sameSecret(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ (y[i] ?? 0);
  return diff === 0;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** What a refused IRC client reads before the connection closes. */
const REFUSALS: Record<Refusal, string> = {
  denied: "access denied",
  full: "server full",
  crowded: "too many connections from your address",
  banned: "you are banned",
};

/**
 * IRC as a {@linkcode ConnectionHandler}: every admitted connection becomes an
 * {@linkcode IrcPeer} of `core`; a refused one reads `ERROR` and why. Several
 * IRC listeners of one core (plain and TLS) share the same formats.
 *
 * @example
 * ```ts
 * import { ChatServer } from "../chat_server.ts";
 * import { ircTransport } from "./irc.ts";
 *
 * const server = new ChatServer(Deno.listen({ hostname: "127.0.0.1", port: 0 }), { relay: true });
 * server.serve(Deno.listen({ hostname: "127.0.0.1", port: 0 }), ircTransport(server.core));
 * await server.shutdown();
 * ```
 */
export function ircTransport(
  core: ChatCore,
  options: IrcTransportOptions = {},
): ConnectionHandler {
  const network = networkFor(core, options);
  /** Connections that have not registered: the core does not know them yet. */
  const unregistered = new Set<IrcPeer>();
  return {
    transport: options.tls ? "ircs" : "irc",
    accept(conn, release) {
      const peer: IrcPeer = new IrcPeer(network, conn, {
        transport: "handshake" in conn ? "ircs" : "irc",
        sendQueue: options.sendQueue,
        drainTimeout: options.drainTimeout,
        registrationTimeout: options.registrationTimeout,
        lineTimeout: options.lineTimeout,
        commandTime: options.commandTime,
        onRegistered: () => unregistered.delete(peer),
        onClosed: () => {
          unregistered.delete(peer);
          release();
        },
      });
      if (!peer.registered) unregistered.add(peer);
    },
    close(reason) {
      for (const peer of unregistered) peer.refuse(reason);
    },
    async refuse(conn, why, text, timeoutMs = 1000) {
      const connection = new Connection(conn);
      connection.send(encoder.encode(`ERROR :Closing link: ${text ?? REFUSALS[why]}${CRLF}`));
      await connection.end(why, timeoutMs);
    },
  };
}
