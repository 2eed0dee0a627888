/**
 * The IRC port over real sockets on 127.0.0.1: registration, rooms shared with
 * line clients, the translations between them, and the limits of the line port
 * (password, access rules, client limit, flood, idle timeout, send queue) as
 * they apply to IRC clients. Each test speaks raw IRC and waits for the lines
 * it expects, never for a time.
 */

import assert from "node:assert/strict";
import {
  LineReader,
  Program,
  startServer,
  TestClient,
  type TestServer,
  within,
} from "./_helpers.ts";
import type { ChatServerOptions } from "../lib/chat_server.ts";
import { AccessList } from "../lib/net/cidr.ts";
import { ircTransport, type IrcTransportOptions } from "../lib/transports/irc.ts";
import { MAX_LINE_BYTES, parseMessage } from "../lib/transports/irc_message.ts";

const encoder = new TextEncoder();

/** A raw IRC connection, reading lines (without CR LF). */
class Irc implements AsyncDisposable {
  readonly conn: Deno.Conn;
  readonly #lines: LineReader;
  /** Every line read so far. */
  readonly seen: string[] = [];
  #pings = 0;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.#lines = new LineReader(conn);
  }

  static async connect(port: number, tls?: { caCerts: string[] }): Promise<Irc> {
    const conn = tls === undefined
      ? await Deno.connect({ hostname: "127.0.0.1", port })
      : await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: tls.caCerts });
    return new Irc(conn);
  }

  /** Connects and registers as `nick` (with CAP negotiation when `caps` are asked for). */
  static async register(
    port: number,
    nick: string,
    options: { caps?: string[]; password?: string; tls?: { caCerts: string[] } } = {},
  ): Promise<Irc> {
    const irc = await Irc.connect(port, options.tls);
    const lines: string[] = [];
    if (options.caps !== undefined) lines.push("CAP LS 302", `CAP REQ :${options.caps.join(" ")}`);
    if (options.password !== undefined) lines.push(`PASS ${options.password}`);
    lines.push(`NICK ${nick}`, `USER ${nick} 0 * :${nick} Real`);
    if (options.caps !== undefined) lines.push("CAP END");
    await irc.send(...lines);
    await irc.until(/ 376 /);
    return irc;
  }

  /** Sends lines, each ending in CR LF, in one write. */
  async send(...lines: string[]): Promise<void> {
    await this.write(lines.map((l) => `${l}\r\n`).join(""));
  }

  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    for (let at = 0; at < bytes.length;) at += await this.conn.write(bytes.subarray(at));
  }

  /** The next line, or null at the end of input. */
  async next(what = "a line"): Promise<string | null> {
    const line = await this.#lines.next(what);
    if (line === null) return null;
    const clean = line.replace(/\r$/, "");
    this.seen.push(clean);
    return clean;
  }

  /** Reads until a line matches; returns every line read, the match last. */
  async until(match: string | RegExp): Promise<string[]> {
    const lines: string[] = [];
    const test = (l: string) => typeof match === "string" ? l === match : match.test(l);
    while (true) {
      const line = await this.next(`a line matching ${match}`);
      if (line === null) {
        throw new Error(
          `Connection ended before a line matching ${match}; got:\n${lines.join("\n")}`,
        );
      }
      lines.push(line);
      if (test(line)) return lines;
    }
  }

  /** Sends a PING and returns every line that came before its PONG: what the server said meanwhile. */
  async sync(): Promise<string[]> {
    const token = `sync${++this.#pings}`;
    await this.send(`PING ${token}`);
    const lines = await this.until(new RegExp(`PONG \\S+ :?${token}$`));
    return lines.slice(0, -1);
  }

  /** Reads to the end of input. */
  async rest(): Promise<string[]> {
    const lines: string[] = [];
    for (let line; (line = await this.next("the end of input")) !== null;) lines.push(line);
    return lines;
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Closed already.
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** A chat server with its line port and an IRC port, on 127.0.0.1. */
function ircServer(
  options: ChatServerOptions = {},
  irc: IrcTransportOptions & { listener?: Deno.Listener } = {},
): TestServer & { ircPort: number } {
  const test = startServer({ relay: true, ...options });
  const listener = irc.listener ?? Deno.listen({ hostname: "127.0.0.1", port: 0 });
  test.server.serve(listener, ircTransport(test.server.core, irc));
  return Object.assign(test, { ircPort: (listener.addr as Deno.NetAddr).port });
}

/** A line client, renamed to `name`, reading past its welcome. */
async function lineClient(port: number, name: string): Promise<TestClient> {
  const client = await TestClient.connect(port);
  await client.send(`/nick ${name}`);
  await client.lines.until(`* you are now ${name}`);
  return client;
}

/** A line client `bea`, then an IRC client `ana` who joins #lobby; bea has seen her come. */
async function beaThenAna(server: TestServer & { ircPort: number }) {
  const bea = await lineClient(server.port, "bea");
  const irc = await Irc.register(server.ircPort, "ana");
  await irc.send("JOIN #lobby");
  await bea.lines.until("* ana joined");
  return {
    bea,
    irc,
    async [Symbol.asyncDispose]() {
      await irc[Symbol.asyncDispose]();
      await bea[Symbol.asyncDispose]();
    },
  };
}

// --- registration --------------------------------------------------------------

Deno.test("IRC registration answers 001 to 005, LUSERS and the MOTD, and PING with PONG", async () => {
  await using server = ircServer({}, { serverName: "irc.example" });
  await using irc = await Irc.connect(server.ircPort);
  await irc.send("NICK ana", "USER ana 0 * :Ana Real");
  const lines = await irc.until(/ 376 /);
  const codes = lines.map((l) => parseMessage(l).command);
  assert.deepEqual(codes.slice(0, 4), ["001", "002", "003", "004"]);
  assert.ok(codes.includes("005") && codes.includes("251") && codes.includes("375"));
  assert.equal(lines[0], ":irc.example 001 ana :Welcome to charla, ana!~ana@irc");
  const isupport = lines.filter((l) => / 005 /.test(l)).join(" ");
  for (const token of ["CASEMAPPING=ascii", "PREFIX=(ov)@+", "CHANTYPES=#", "UTF8ONLY", "WHOX"]) {
    assert.ok(isupport.includes(token), token);
  }
  await irc.send("PING :abc def");
  assert.deepEqual(await irc.until(/PONG/), [":irc.example PONG irc.example :abc def"]);
});

Deno.test("IRC before registration: 451 to other commands (irssi's JOIN :), PONG to PING", async () => {
  await using server = ircServer();
  await using irc = await Irc.connect(server.ircPort);
  await irc.send("CAP LS 302", "JOIN :", "PING early");
  assert.match((await irc.until(/ CAP /))[0], /^:charla CAP \* LS :.*server-time/);
  assert.deepEqual(await irc.until(/451/), [":charla 451 * :You have not registered"]);
  await irc.until(":charla PONG charla :early");
});

Deno.test("IRC CAP: REQ is ACKed or NAKed whole, LIST shows what is on, END registers", async () => {
  await using server = ircServer();
  await using irc = await Irc.connect(server.ircPort);
  await irc.send("CAP LS 302", "NICK ana", "USER ana 0 * :Ana");
  await irc.until(/ CAP \* LS /);
  await irc.send("CAP REQ :multi-prefix sasl", "CAP REQ :multi-prefix server-time", "CAP LIST");
  assert.deepEqual(await irc.until(/ LIST /), [
    ":charla CAP * NAK :multi-prefix sasl",
    ":charla CAP * ACK :multi-prefix server-time",
    ":charla CAP * LIST :multi-prefix server-time",
  ]);
  // No 001 until CAP END.
  assert.deepEqual(await irc.sync(), []);
  await irc.send("CAP END");
  await irc.until(/ 001 ana /);
});

Deno.test("IRC nick taken before registration: 433 to *, then another NICK registers", async () => {
  await using server = ircServer();
  await using _ana = await lineClient(server.port, "ana");
  await using irc = await Irc.connect(server.ircPort);
  await irc.send("NICK ANA", "USER x 0 * :x");
  assert.deepEqual(await irc.until(/ 433 /), [':charla 433 * ANA :the name "ANA" is taken']);
  await irc.send("NICK ana2");
  await irc.until(/^:charla 001 ana2 /);
});

Deno.test("IRC nicks charla refuses get 432; a look-alike of a name in use gets 433", async () => {
  await using server = ircServer();
  await using _alice = await lineClient(server.port, "alice");
  await using irc = await Irc.connect(server.ircPort);
  for (const nick of ["[ana]", "ana.b", "server", "user99", "1234"]) {
    await irc.send(`NICK ${nick}`, "USER x 0 * :x");
    const [line] = await irc.until(/ 43\d /);
    assert.match(line, new RegExp(`^:charla 432 \\* ${nick.replace(/[[\].]/g, "\\$&")} :`), nick);
  }
  await irc.send("NICK AIice");
  assert.match((await irc.until(/ 43\d /))[0], /^:charla 433 \* AIice /);
  await irc.send("NICK");
  assert.match((await irc.until(/ 431 /))[0], /No nickname given/);
});

Deno.test("IRC PASS: the server password lets a client in; none or a wrong one gets 464 and ERROR", async () => {
  await using server = ircServer({ password: "s3cret" });
  await using _good = await Irc.register(server.ircPort, "ana", { password: "s3cret" });
  for (const pass of [null, "wrong"]) {
    await using bad = await Irc.connect(server.ircPort);
    await bad.send(...(pass === null ? [] : [`PASS ${pass}`]), "NICK bea", "USER bea 0 * :Bea");
    const rest = await bad.rest();
    assert.match(rest[0], /^:charla 464 \* :/);
    assert.match(rest[1], /^ERROR :Closing link: bad password$/);
    assert.equal(rest.length, 2);
  }
  assert.equal(server.server.clientCount, 1);
});

Deno.test("IRC USER with an empty user name or real name gets 461; USER again gets 462", async () => {
  await using server = ircServer();
  await using irc = await Irc.connect(server.ircPort);
  await irc.send("NICK ana", "USER ana 0 * :");
  assert.match((await irc.until(/ 461 /))[0], /^:charla 461 \* USER :/);
  await irc.send("USER ana 0 * :Ana");
  await irc.until(/ 001 /);
  await irc.send("USER ana 0 * :Ana");
  assert.match((await irc.until(/ 462 /)).at(-1)!, /^:charla 462 ana :/);
});

// --- rooms shared with line clients --------------------------------------------------

Deno.test("IRC JOIN: JOIN, names with the room's operator, then its history as marked NOTICEs", async () => {
  await using server = ircServer();
  await using bea = await lineClient(server.port, "bea");
  await bea.send("hola", "/me saluda", "/topic el tema");
  await bea.lines.until("* bea set the topic of #lobby: el tema");
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("JOIN #lobby");
  const lines = await irc.until(/end of history/);
  assert.equal(lines[0], ":ana!~ana@irc JOIN :#lobby");
  assert.equal(lines[1], ":charla 332 ana #lobby :el tema");
  assert.match(lines[2], /^:charla 333 ana #lobby bea :\d+$/);
  assert.equal(lines[3], ":charla 353 ana = #lobby :@bea ana");
  assert.equal(lines[4], ":charla 366 ana #lobby :End of /NAMES list");
  assert.equal(lines[5], ":charla NOTICE #lobby :last 2 lines of #lobby:");
  assert.match(lines[6], /^:charla NOTICE #lobby :\[\d\d:\d\d\] <bea> hola$/);
  assert.match(lines[7], /^:charla NOTICE #lobby :\[\d\d:\d\d\] \* bea saluda$/);
  assert.equal(lines[8], ":charla NOTICE #lobby :end of history");
  await bea.lines.until("* ana joined");
});

Deno.test("IRC JOIN with server-time: history lines are the PRIVMSGs they were, with their time", async () => {
  await using server = ircServer();
  await using bea = await lineClient(server.port, "bea");
  const before = Date.now();
  await bea.send("hola", "/me saluda");
  await bea.send("/who");
  await bea.lines.until(/^\* in #lobby/);
  await using irc = await Irc.register(server.ircPort, "ana", { caps: ["server-time"] });
  await irc.send("JOIN #lobby");
  const lines = (await irc.until(/end of history/)).slice(-4);
  const times = lines.slice(1, 3).map((l) => Date.parse(parseMessage(l).tags.get("time")!));
  for (const time of times) assert.ok(time >= before && time <= Date.now());
  assert.deepEqual(lines.map((l) => l.replace(/^@time=\S+ /, "")), [
    ":charla NOTICE #lobby :last 2 lines of #lobby:",
    ":bea!bea@history PRIVMSG #lobby :hola",
    ":bea!bea@history PRIVMSG #lobby :\x01ACTION saluda\x01",
    ":charla NOTICE #lobby :end of history",
  ]);
});

Deno.test("IRC and line clients talk: lines, /me as CTCP ACTION, private messages both ways", async () => {
  await using server = ircServer();
  await using pair = await beaThenAna(server);
  const { bea, irc } = pair;
  await irc.sync();

  await bea.send("hola ana", "/me saluda");
  assert.deepEqual(await irc.until(/ACTION/), [
    ":bea!bea@line PRIVMSG #lobby :hola ana",
    ":bea!bea@line PRIVMSG #lobby :\x01ACTION saluda\x01",
  ]);
  await irc.send("PRIVMSG #lobby :hola bea", "PRIVMSG #lobby :\x01ACTION waves\x01");
  // A line client sees its own /me, as the room does.
  assert.deepEqual(await bea.lines.until(/^\*\* ana/), [
    "** bea saluda",
    "<ana> hola bea",
    "** ana waves",
  ]);

  await bea.send("/msg ana psst", "/msg ana /me guiña");
  assert.deepEqual((await irc.until(/guiña/)).slice(-2), [
    ":bea!bea@line PRIVMSG ana :psst",
    ":bea!bea@line PRIVMSG ana :/me guiña",
  ]);
  await irc.send("PRIVMSG bea :te oigo", "PRIVMSG bea :\x01ACTION sonríe\x01");
  assert.deepEqual(await bea.lines.until(/sonríe/), [
    "-> *ana* psst",
    "-> *ana* /me guiña",
    "*ana* te oigo",
    "*ana* ** ana sonríe",
  ]);
  // No echo without echo-message: the IRC client shows its own lines itself.
  assert.deepEqual(await irc.sync(), []);
});

Deno.test("IRC colour and bold codes are removed from what IRC clients say", async () => {
  await using server = ircServer();
  await using bea = await lineClient(server.port, "bea");
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send(
    "JOIN #lobby",
    "PRIVMSG #lobby :\x02negrita\x02 y \x0304,01rojo\x03 \x1ditálica\x1d",
  );
  await bea.lines.until("<ana> negrita y rojo itálica");
});

Deno.test("IRC formatting is removed from topics, away and part messages; real names are made safe", async () => {
  await using server = ircServer();
  await using bea = await lineClient(server.port, "bea");
  await using irc = await Irc.connect(server.ircPort);
  await irc.send("NICK ana", "USER ana 0 * :\x02Ana\x02 \x1b[31mroja");
  await irc.until(/ 376 /);
  await irc.send("JOIN #lobby", "TOPIC #lobby :\x02tema\x02 \x0304nuevo", "AWAY :\x1dfuera\x1d");
  await bea.lines.until("* ana set the topic of #lobby: tema nuevo");
  await bea.send("/whois ana");
  assert.match((await bea.lines.until(/^\* ana /)).at(-1)!, /away: fuera/);
  await irc.send("WHOIS ana", "PART #lobby :\x02adiós\x02");
  assert.ok((await irc.sync()).includes(":charla 311 ana ana ~ana irc * :Ana ^[[31mroja"));
  await bea.lines.until("* ana left #lobby (adiós)");
});

Deno.test("IRC PRIVMSG to yourself comes back; KICK and INVITE say they are not supported", async () => {
  await using server = ircServer();
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("PRIVMSG ANA :nota", "KICK #lobby bea", "INVITE bea #x");
  assert.deepEqual(await irc.sync(), [
    ":ana!~ana@irc PRIVMSG ana :nota",
    ":charla 421 ana KICK :Not supported by charla",
    ":charla 421 ana INVITE :Not supported by charla",
  ]);
});

Deno.test("a line longer than 512 bytes reaches IRC clients split into whole pieces, not cut", async () => {
  await using server = ircServer();
  await using pair = await beaThenAna(server);
  const { bea, irc } = pair;
  const text = "¿Sabías que 你好 significa hola? ".repeat(60).trim() + " 👋🏽 fin";
  await bea.send(text);
  await bea.send("/me termina");
  const lines = (await irc.until(/ACTION termina/)).filter((l) => l.includes("PRIVMSG"));
  const pieces = lines.slice(0, -1);
  assert.ok(pieces.length >= 4, `${pieces.length} pieces`);
  for (const line of pieces) {
    assert.ok(encoder.encode(line).length + 2 <= MAX_LINE_BYTES, `${line.length} chars`);
    assert.ok(line.startsWith(":bea!bea@line PRIVMSG #lobby :"));
  }
  assert.equal(pieces.map((l) => parseMessage(l).params[1]).join(""), text);
});

Deno.test("IRC NOTICE goes as a NOTICE, and nothing answers it: no away reply, no error", async () => {
  await using server = ircServer();
  await using bea = await Irc.register(server.ircPort, "bea");
  await using irc = await Irc.register(server.ircPort, "ana");
  await bea.send("AWAY :comiendo");
  await bea.until(/ 306 /);
  await irc.send("NOTICE bea :aviso", "NOTICE nadie :x", "NOTICE #nada :x");
  assert.deepEqual(await irc.sync(), []);
  await bea.until(":ana!~ana@irc NOTICE bea :aviso");
  await irc.send("PRIVMSG bea :¿estás?");
  assert.deepEqual(await irc.sync(), [":charla 301 ana bea :comiendo"]);
});

Deno.test("IRC and line clients see each other's nick changes, topics, parts and quits", async () => {
  await using server = ircServer();
  await using pair = await beaThenAna(server);
  const { bea, irc } = pair;
  await irc.sync();

  await bea.send("/nick bea2", "/topic nuevo tema");
  assert.deepEqual(await irc.until(/TOPIC/), [
    ":bea!bea@line NICK :bea2",
    ":bea2!bea2@line TOPIC #lobby :nuevo tema",
  ]);
  await irc.send("NICK ana2", "TOPIC #lobby :otro tema");
  assert.deepEqual(await irc.until(/TOPIC/), [
    ":ana!~ana@irc NICK :ana2",
    ":ana2!~ana@irc TOPIC #lobby :otro tema",
  ]);
  await bea.lines.until("* ana is now ana2");
  await bea.lines.until("* ana2 set the topic of #lobby: otro tema");

  await bea.send("/join #dev");
  assert.deepEqual(await irc.until(/PART/), [":bea2!bea2@line PART #lobby :left for #dev"]);
  await irc.send("JOIN #dev", "PART #lobby :me voy");
  await bea.lines.until("* ana2 joined");
  assert.deepEqual((await irc.until(/PART/)).at(-1), ":ana2!~ana@irc PART #lobby :me voy");
  await irc.send("QUIT :hasta luego");
  assert.deepEqual(await irc.rest(), ["ERROR :Closing link: goodbye"]);
  await bea.lines.until("* ana2 left (quit: hasta luego)");
});

Deno.test("an IRC client is in several rooms at once, a line client in one", async () => {
  await using server = ircServer();
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("JOIN #a,#b", "JOIN #c");
  await irc.until(/366 ana #c/);
  await using bea = await lineClient(server.port, "bea");
  await bea.send("/whois ana");
  const [whois] = await bea.lines.until(/^\* ana /);
  assert.match(whois, /in #a, #b, #c, via irc/);
  await bea.send("/join #a", "/join #b");
  await bea.lines.until(/you are now in #b/);
  const lines = await irc.until(/JOIN :#b/);
  assert.deepEqual(lines.slice(-3), [
    ":bea!bea@line JOIN :#a",
    ":bea!bea@line PART #a :left for #b",
    ":bea!bea@line JOIN :#b",
  ]);
  await irc.send("PRIVMSG #a,#c :a dos salas");
  assert.deepEqual(await irc.sync(), []);
  await bea.send("/join #solo");
  await irc.until(/PART #b/);
  await irc.send("PRIVMSG #solo :no estás", "PRIVMSG #nada :no existe");
  assert.deepEqual(await irc.sync(), [
    ":charla 404 ana #solo :Cannot send to channel (join it first)",
    ":charla 403 ana #nada :No such channel",
  ]);
});

Deno.test("IRC names follow ASCII case mapping, not the core's look-alikes", async () => {
  await using server = ircServer();
  await using mallory = await Irc.register(server.ircPort, "mallory");
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("PRIVMSG rnallory :hola", "WHOIS rnallory");
  assert.deepEqual(await irc.sync(), [
    ":charla 401 ana rnallory :No such nick/channel",
    ":charla 401 ana rnallory :No such nick/channel",
    ":charla 318 ana rnallory :End of /WHOIS list",
  ]);
  await irc.send("PRIVMSG MALLORY :hola", "JOIN #Sala", "JOIN #sala");
  await mallory.until(":ana!~ana@irc PRIVMSG mallory :hola");
  const joined = await irc.sync();
  assert.equal(joined[0], ":ana!~ana@irc JOIN :#Sala");
  assert.equal(joined.filter((l) => / JOIN /.test(l)).length, 1);
});

Deno.test("IRC CTCP other than ACTION goes between IRC clients as it is, and never to line clients", async () => {
  await using server = ircServer();
  await using bea = await lineClient(server.port, "bea");
  await using carla = await Irc.register(server.ircPort, "carla");
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("PRIVMSG carla :\x01VERSION\x01");
  await carla.until(":ana!~ana@irc PRIVMSG carla :\x01VERSION\x01");
  await carla.send("NOTICE ana :\x01VERSION irssi 1.4\x01");
  await irc.until(":carla!~carla@irc NOTICE ana :\x01VERSION irssi 1.4\x01");
  await irc.send("PRIVMSG bea :\x01VERSION\x01", "PRIVMSG carla :\x01DCC SEND x 1 2 3\x01");
  assert.deepEqual(await irc.sync(), [
    ":charla NOTICE ana :CTCP VERSION to bea not relayed: bea does not use IRC",
    ":charla NOTICE ana :CTCP DCC to carla not relayed: DCC is not relayed",
  ]);
  await bea.send("/who");
  assert.deepEqual(await bea.lines.until(/^\* in #lobby/), ["* in #lobby (1): bea"]);
});

Deno.test("IRC WHO, WHOIS, NAMES, LIST, USERHOST and ISON show line clients too", async () => {
  await using server = ircServer();
  await using _bea = await lineClient(server.port, "bea");
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("JOIN #lobby", "AWAY :fuera");
  await irc.sync();
  await irc.send("WHO #lobby", "NAMES #lobby", "LIST", "USERHOST bea ana", "ISON bea nadie ana");
  assert.deepEqual(await irc.sync(), [
    ":charla 352 ana #lobby bea line charla bea H@ :0 via line",
    ":charla 352 ana #lobby ~ana irc charla ana G :0 ana Real",
    ":charla 315 ana #lobby :End of WHO list",
    ":charla 353 ana = #lobby :@bea ana",
    ":charla 366 ana #lobby :End of /NAMES list",
    ":charla 321 ana Channel :Users  Name",
    ":charla 322 ana #lobby 2 :",
    ":charla 323 ana :End of /LIST",
    ":charla 302 ana :bea=+bea@line ana=-~ana@irc",
    ":charla 303 ana :bea ana",
  ]);
  await irc.send("WHOIS bea");
  const whois = await irc.sync();
  assert.deepEqual(whois.map((l) => parseMessage(l).command), ["311", "319", "312", "317", "318"]);
  assert.equal(whois[0], ":charla 311 ana bea bea line * :via line");
  assert.equal(whois[1], ":charla 319 ana bea :@#lobby");
  assert.equal(whois[2], ":charla 312 ana bea charla :charla, via line");
});

Deno.test("IRC channel modes: the room's creator is its operator, +t locks the topic for line clients too", async () => {
  await using server = ircServer();
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("JOIN #dev");
  await irc.until(/366 ana #dev/);
  await using bea = await lineClient(server.port, "bea");
  await using carla = await Irc.register(server.ircPort, "carla");
  await bea.send("/join #dev");
  await carla.send("JOIN #dev");
  await carla.until(/366 carla #dev/);
  await irc.sync();

  await carla.send("MODE #dev +t");
  assert.match((await carla.sync())[0], /^:charla 482 carla #dev /);
  await irc.send("MODE #dev +tv carla", "MODE #dev");
  const modes = await irc.sync();
  assert.deepEqual(modes.slice(0, 2), [
    ":ana!~ana@irc MODE #dev +tv :carla",
    ":charla 324 ana #dev :+nt",
  ]);
  assert.match(modes[2], /^:charla 329 ana #dev :\d+$/);
  await carla.until(":ana!~ana@irc MODE #dev +tv :carla");
  await carla.send("TOPIC #dev :nuevo", "NAMES #dev");
  assert.deepEqual(await carla.sync(), [
    ":charla 482 carla #dev :only the operators of #dev may change its topic",
    ":charla 353 carla = #dev :@ana bea +carla",
    ":charla 366 carla #dev :End of /NAMES list",
  ]);
  await bea.send("/topic nuevo");
  await bea.lines.until("* error: only the operators of #dev may change its topic");
  await irc.send("MODE #dev +o carla");
  await carla.until(":ana!~ana@irc MODE #dev +o :carla");
  await carla.send("TOPIC #dev :ahora sí");
  await bea.lines.until("* carla set the topic of #dev: ahora sí");
});

Deno.test("IRC +s hides a room from those not in it: LIST, NAMES, WHOIS, and line clients' /rooms", async () => {
  await using server = ircServer();
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("JOIN #secreta", "MODE #secreta +s");
  await irc.until(":ana!~ana@irc MODE #secreta :+s");
  await using bea = await lineClient(server.port, "bea");
  await bea.send("/rooms", "/whois ana", "/who #secreta");
  const lines = await bea.lines.until(/no room #secreta/);
  assert.deepEqual(lines.slice(0, 2), ["* 1 room:", "*   #lobby (1)"]);
  assert.match(lines[2], /^\* ana \(#\d+\): in no room, via irc,/);
  assert.equal(lines[3], "* error: there is no room #secreta");
  await using carla = await Irc.register(server.ircPort, "carla");
  await carla.send("LIST", "NAMES #secreta", "WHOIS ana", "TOPIC #secreta");
  const seen = await carla.sync();
  assert.ok(seen.some((l) => / 311 carla ana /.test(l)));
  assert.deepEqual(seen.filter((l) => l.includes("#secreta")), [
    ":charla 366 carla #secreta :End of /NAMES list",
    ":charla 403 carla #secreta :No such channel",
  ]);
  await irc.send("NAMES #secreta");
  assert.equal((await irc.sync())[0], ":charla 353 ana @ #secreta :@ana");
});

// --- IRC's own rules ----------------------------------------------------------------

Deno.test("IRC input: a line over 512 bytes gets 417 and the connection goes on; non-UTF-8 gets FAIL", async () => {
  await using server = ircServer();
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send(`PRIVMSG #lobby :${"x".repeat(600)}`, `@a=${"b".repeat(5000)} PING x`);
  await irc.write(new Uint8Array([...encoder.encode("PRIVMSG ana :hola "), 0xff, 0x0d, 0x0a]));
  assert.deepEqual(await irc.sync(), [
    ":charla 417 ana :Input line was too long",
    ":charla 417 ana :Input line was too long",
    ":charla FAIL PRIVMSG INVALID_UTF8 :Message rejected: it is not UTF-8",
  ]);
});

Deno.test("IRC echo-message: the sender gets its own room and private lines back, once", async () => {
  await using server = ircServer();
  await using bea = await Irc.register(server.ircPort, "bea");
  await using irc = await Irc.register(server.ircPort, "ana", { caps: ["echo-message"] });
  await irc.send("JOIN #lobby", "PRIVMSG #lobby :hola", "PRIVMSG bea :psst");
  const lines = await irc.sync();
  assert.deepEqual(lines.filter((l) => /PRIVMSG/.test(l)), [
    ":ana!~ana@irc PRIVMSG #lobby :hola",
    ":ana!~ana@irc PRIVMSG bea :psst",
  ]);
  await bea.until(":ana!~ana@irc PRIVMSG bea :psst");
});

Deno.test("IRC multi-prefix and userhost-in-names change NAMES; WHOX answers the fields asked", async () => {
  await using server = ircServer();
  await using irc = await Irc.register(server.ircPort, "ana", {
    caps: ["multi-prefix", "userhost-in-names"],
  });
  await irc.send("JOIN #x", "MODE #x +v ana", "NAMES #x", "WHO #x %tnfc,42");
  const lines = await irc.sync();
  assert.ok(lines.includes(":charla 353 ana = #x :@+ana!~ana@irc"), lines.join("\n"));
  assert.ok(lines.includes(":charla 354 ana 42 #x ana :H@+"), lines.join("\n"));
});

Deno.test("IRC OPER and KILL: an IRC operator disconnects someone; others cannot", async () => {
  await using server = ircServer({}, { operators: new Map([["root", "hunter2"]]) });
  await using bea = await lineClient(server.port, "bea");
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("KILL bea", "OPER root nope", "OPER root hunter2", "WHO ana");
  const lines = await irc.sync();
  assert.match(lines[0], /^:charla 481 ana :/);
  assert.match(lines[1], /^:charla 464 ana :/);
  assert.deepEqual(lines.slice(2, 4), [
    ":charla 381 ana :You are now an IRC operator",
    ":ana!~ana@irc MODE ana :+o",
  ]);
  assert.match(lines[4], /^:charla 352 ana \* ~ana irc charla ana H\* :0 ana Real$/);
  await irc.send("KILL bea :basta");
  assert.deepEqual(await bea.lines.rest(), ["* you were kicked: basta (by ana)"]);
});

// --- the line port's limits, on the IRC port -------------------------------------------

Deno.test("IRC port: denied addresses and a full server are told why with ERROR", async () => {
  {
    await using server = ircServer({ access: new AccessList({ deny: ["127.0.0.0/8"] }) });
    await using irc = await Irc.connect(server.ircPort);
    assert.deepEqual(await irc.rest(), ["ERROR :Closing link: access denied"]);
  }
  await using server = ircServer({ maxClients: 1 });
  await using _first = await Irc.register(server.ircPort, "ana");
  await using second = await Irc.connect(server.ircPort);
  assert.deepEqual(await second.rest(), ["ERROR :Closing link: server full"]);
});

Deno.test("IRC port: the idle timeout disconnects a silent IRC client with ERROR; PING does not count", async () => {
  await using server = ircServer({ idleTimeout: 300 });
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("JOIN #lobby");
  // Like irssi, PING every 50 ms: the server must still see a silent person.
  const lines: string[] = [];
  for (
    let i = 0;
    i < 60 && !lines.includes("ERROR :Closing link: idle for 0.3 s: disconnecting");
    i++
  ) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    await irc.send(`PING ${i}`).catch(() => {}); // the server may have closed already
    const line = await irc.next();
    if (line === null) break;
    lines.push(line);
  }
  assert.ok(lines.includes("ERROR :Closing link: idle for 0.3 s: disconnecting"), lines.join("\n"));
  await server.log.until(
    () => server.log.of("leave").some((e) => e.peer.name === "ana" && e.reason === "timed out"),
    "ana to leave as timed out",
  );
});

Deno.test("IRC port: a line that does not end within the line timeout closes the client with ERROR", async () => {
  await using server = ircServer({}, { lineTimeout: 200 });
  await using pair = await beaThenAna(server);
  const { bea, irc } = pair;
  // A slowloris: the start of a line, and then nothing.
  await irc.write("PRIVMSG #lobby :sin fin");
  const rest = await within(irc.rest(), "the server to close ana");
  assert.equal(rest.at(-1), "ERROR :Closing link: no end of line in 0.2 s");
  await bea.lines.until("* ana left (line timeout)");
});

Deno.test("IRC port: the flood limit drops lines over the rate and says so once", async () => {
  await using server = ircServer({ flood: 2 });
  await using pair = await beaThenAna(server);
  const { bea, irc } = pair;
  await irc.send(...Array.from({ length: 6 }, (_, i) => `PRIVMSG #lobby :línea ${i}`));
  const notices = (await irc.sync()).filter((l) => /NOTICE ana/.test(l));
  assert.deepEqual(notices, [
    ":charla NOTICE ana :flood: over 2 lines per second; lines are dropped until you slow down",
  ]);
  await bea.send("/who");
  const seen = await bea.lines.until(/^\* in #lobby/);
  assert.deepEqual(seen.filter((l) => l.startsWith("<ana>")), ["<ana> línea 0", "<ana> línea 1"]);
});

Deno.test("IRC port: past its share of server time, the rest of a client's input waits, in order", async () => {
  // A share so small that any command uses it up: the debt it leaves (at most
  // the burst) takes 1 s to repay. The default is 20 ms a second, 5 at once.
  await using server = ircServer({}, { commandTime: { msPerSecond: 0.001, burstMs: 0.001 } });
  await using pair = await beaThenAna(server);
  const { bea, irc } = pair;
  // In one read (after ana's JOIN is paid for, which the WHO waits for):
  await irc.send("WHO #lobby", "PING :después", "PRIVMSG #lobby :tarde");
  await irc.until(/ 315 ana #lobby /);
  // The PING and the PRIVMSG wait for ana's debt; bea is not held meanwhile.
  await bea.send("hola");
  const before = await irc.until(/^:bea!\S+ PRIVMSG #lobby :hola$/);
  assert.ok(!before.some((l) => / PONG /.test(l)), `PONG before bea's line:\n${before.join("\n")}`);
  // Then they run, in the order sent.
  await irc.until(/ PONG \S+ :?después$/);
  await bea.lines.until("<ana> tarde");
});

Deno.test("IRC port: a client that stops reading is dropped as too slow; the room goes on", async () => {
  await using server = ircServer({ sendQueue: 16 * 1024, slowTimeout: 200, minProgress: 4096 });
  await using bea = await lineClient(server.port, "bea");
  await using slow = await Irc.register(server.ircPort, "lento");
  await slow.send("JOIN #lobby");
  await bea.lines.until("* lento joined");
  // lento never reads again; bea talks until the server gives up on lento.
  const line = "x".repeat(1000);
  const gone = server.log.until(
    () => server.log.of("leave").some((e) => e.peer.name === "lento" && e.reason === "too slow"),
    "lento to be dropped as too slow",
  );
  let sent = 0;
  const talking = (async () => {
    while (sent < 20_000) {
      await bea.send(...Array.from({ length: 50 }, () => line));
      sent += 50;
      if (server.log.of("leave").length > 0) return;
    }
  })();
  await gone;
  await within(talking, "bea to stop talking");
  await bea.lines.until("* lento left (too slow)");
});

Deno.test("the operator's log shows IRC clients like any other, with their transport", async () => {
  await using server = ircServer();
  await using irc = await Irc.register(server.ircPort, "ana");
  await irc.send("JOIN #lobby", "PRIVMSG #lobby :hola", "NOTICE #lobby :aviso");
  await irc.sync();
  const connect = server.log.of("connect")[0];
  assert.equal(connect.peer.transport, "irc");
  assert.match(connect.peer.address, /^127\.0\.0\.1:\d+$/);
  assert.deepEqual(server.log.of("join").map((e) => [e.peer.name, e.room]), [["ana", "#lobby"]]);
  assert.deepEqual(server.log.messages, ["ana: hola", "ana: aviso"]);
  assert.deepEqual(server.log.of("listening").map((e) => e.transport), ["line", "irc"]);
});

Deno.test("shutdown tells registered and unregistered IRC clients with ERROR and closes them", async () => {
  const server = ircServer();
  await using irc = await Irc.register(server.ircPort, "ana");
  await using pending = await Irc.connect(server.ircPort);
  await pending.send("NICK bea");
  await pending.sync();
  const done = server.server.shutdown();
  assert.deepEqual(await irc.rest(), ["ERROR :Closing link: server shutting down"]);
  assert.deepEqual(await pending.rest(), ["ERROR :Closing link: server shutting down"]);
  await within(done, "the shutdown");
});

Deno.test("IRC registration times out for a client that never registers", async () => {
  await using server = ircServer({}, { registrationTimeout: 100 });
  await using irc = await Irc.connect(server.ircPort);
  await irc.send("NICK ana");
  assert.deepEqual(await irc.rest(), ["ERROR :Closing link: registration timed out"]);
});

Deno.test("IRC over TLS: an ircs client registers and talks", async () => {
  const fixtures = new URL("./fixtures/", import.meta.url);
  const cert = await Deno.readTextFile(new URL("server.pem", fixtures));
  const key = await Deno.readTextFile(new URL("server-key.pem", fixtures));
  const ca = await Deno.readTextFile(new URL("ca.pem", fixtures));
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
  await using server = ircServer({}, { listener, tls: true });
  await using bea = await lineClient(server.port, "bea");
  await using irc = await Irc.register(server.ircPort, "ana", { tls: { caCerts: [ca] } });
  await irc.send("PRIVMSG bea :por TLS");
  await bea.lines.until("*ana* por TLS");
  assert.deepEqual(server.log.of("listening").map((e) => e.transport), ["line", "ircs"]);
  await bea.send("/whois ana");
  assert.match((await bea.lines.until(/^\* ana /)).at(-1)!, /via ircs/);
});

// --- server.ts --------------------------------------------------------------------------

Deno.test("server.ts --irc serves IRC beside the line port; bad IRC flags exit 2", async () => {
  for (
    const [args, message] of [
      [["--irc", "6667"], "--irc needs --relay"],
      [["-r", "--irc-tls", "6697"], "--irc-tls needs --tls-cert"],
      [["-r", "--irc", "127.0.0.1:99999"], 'invalid --irc "99999"'],
      [["-r", "--irc", "::1:6667"], "write an IPv6 address in brackets"],
      [["-r", "--server-name", "a b"], 'invalid --server-name "a b"'],
    ] as const
  ) {
    await using program = new Program("server.ts", [...args]);
    assert.equal(await program.exit(), 2, args.join(" "));
    assert.match(
      (await program.stderr.rest()).join("\n"),
      new RegExp(message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")),
    );
  }

  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/password`, "s3cret\n");
    await using server = new Program("server.ts", [
      "-r",
      "-p",
      "0",
      "--irc",
      "127.0.0.1:0",
      "--password-file",
      `${dir}/password`,
      "--line-timeout",
      "0.5",
    ], ["--allow-read"]);
    await server.stdout.until(/^listening on 127\.0\.0\.1:\d+$/);
    const [ircLine] = await server.stdout.until(/\(irc\)$/);
    const port = Number(/:(\d+) \(irc\)$/.exec(ircLine)![1]);
    await using irc = await Irc.register(port, "ana", { password: "s3cret" });
    await irc.send("QUIT :adiós");
    await server.stdout.until(/#1 ana left \(quit: adiós\)/);
    // --line-timeout applies to the IRC port too.
    await using slow = await Irc.register(port, "bea", { password: "s3cret" });
    await slow.write("PRIVMSG ana :sin");
    assert.equal((await slow.rest()).at(-1), "ERROR :Closing link: no end of line in 0.5 s");
    await server.stdout.until(/#2 bea left \(line timeout\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
