import assert from "node:assert/strict";
import type { ErrorCode, HistoryLine, RoomEvent } from "../core/messages.ts";
import { SaidBatch } from "../core/peer.ts";
import {
  errorNumeric,
  fitText,
  formatLine,
  formatModeChanges,
  historyLines,
  IrcFormat,
  listMatches,
  matchMask,
  memberPrefix,
  namesLines,
  numeric,
  parseListFilters,
  parseModeChanges,
  quitText,
  stripFormatting,
  textMessages,
  whoxFields,
  wordLines,
} from "./irc_format.ts";
import { MAX_LINE_BYTES, parseMessage, utf8Length } from "./irc_message.ts";

const decoder = new TextDecoder();
const T0 = Date.UTC(2026, 10, 28, 12, 0, 0);

function format(tagged = false): IrcFormat {
  return new IrcFormat({
    server: "charla",
    sourceOf: (who) => `${who.name}!~${who.name}@irc`,
    sourceOfName: (name) => `${name}!${name}@line`,
    tagged,
    now: () => T0,
  });
}

function batch(kind: SaidBatch["kind"], ...lines: string[]): SaidBatch {
  const b = new SaidBatch();
  for (const line of lines) {
    b.text.appendText(line);
    b.endLine();
  }
  b.kind = kind;
  b.time = T0;
  return b;
}

/** The lines of encoded bytes, without CR LF; fails if any line lacks it. */
function lines(bytes: Uint8Array | null): string[] {
  assert.ok(bytes !== null);
  const text = decoder.decode(bytes);
  assert.ok(text.endsWith("\r\n"), JSON.stringify(text));
  return text.slice(0, -2).split("\r\n");
}

function assertFits(line: string): void {
  assert.ok(utf8Length(line) + 2 <= MAX_LINE_BYTES, `${utf8Length(line) + 2} bytes: ${line}`);
}

// --- text in ------------------------------------------------------------------

Deno.test("stripFormatting removes bold, colours, italics, underline, reverse and reset", () => {
  assert.equal(stripFormatting("plain, 100%"), "plain, 100%");
  assert.equal(
    stripFormatting("\x02b\x02 \x1di\x1d \x1fu\x1f \x16r\x16 \x0fz \x1es\x1e \x11m"),
    "b i u r z s m",
  );
  assert.equal(stripFormatting("\x034rojo\x03 \x0312,04azul\x03 \x039,1x"), "rojo azul x");
  // Digits after a full colour code are text; a comma without a foreground is text.
  assert.equal(stripFormatting("\x0301234"), "234");
  assert.equal(stripFormatting("\x03,5 coma"), ",5 coma");
  assert.equal(stripFormatting("\x04ff0000hex\x04 fin"), "hex fin");
});

// --- lines out ----------------------------------------------------------------

Deno.test("formatLine always writes the last parameter as a trailing one", () => {
  assert.equal(
    formatLine({ source: "a!b@c", command: "NICK", params: ["bea"] }),
    ":a!b@c NICK :bea",
  );
  assert.equal(
    formatLine({ command: "PRIVMSG", params: ["#x", "hola a todos"] }),
    "PRIVMSG #x :hola a todos",
  );
  assert.equal(formatLine({ command: "TOPIC", params: ["#x", ""] }), "TOPIC #x :");
  assert.equal(formatLine({ command: "QUIT", params: [] }), "QUIT");
  assert.equal(formatLine({ command: "PRIVMSG", params: ["#x", ":)"] }), "PRIVMSG #x ::)");
});

Deno.test("quitText turns charla's leave reasons into IRC quit messages", () => {
  assert.equal(quitText("quit"), "Quit");
  assert.equal(quitText("quit: nos vemos"), "Quit: nos vemos");
  assert.equal(quitText("eof"), "Connection closed");
  assert.equal(quitText("kicked"), "Kicked by the operator");
  assert.equal(quitText("kicked: spam"), "Kicked by the operator: spam");
  assert.equal(quitText("too slow"), "Too slow (send queue exceeded)");
  assert.equal(quitText("timed out"), "Idle timeout");
  assert.equal(quitText("connection lost"), "Connection lost");
  assert.equal(quitText("server shutting down"), "Server shutting down");
});

Deno.test("fitText cuts only what cannot be split, at a character or grapheme boundary", () => {
  assert.equal(fitText("corto", 100), "corto");
  const text = "👋🏽".repeat(200);
  const cut = fitText(text, 100);
  assert.ok(utf8Length(cut) <= MAX_LINE_BYTES - 100);
  assert.ok(text.startsWith(cut) && cut.length % "👋🏽".length === 0);
});

Deno.test("textMessages: a line that fits is one message; a longer one is split, whole and in order", () => {
  const line = { source: "ana!~ana@irc", command: "PRIVMSG" as const, target: "#lobby" };
  assert.deepEqual(textMessages(line, "hola"), [":ana!~ana@irc PRIVMSG #lobby :hola"]);
  const text = "palabra ñandú 你好 ".repeat(100);
  const out = textMessages(line, text);
  assert.ok(out.length > 1);
  for (const l of out) assertFits(l);
  assert.equal(out.map((l) => parseMessage(l).params[1]).join(""), text);
  // An action is split into actions, each with its own CTCP wrapper.
  const actions = textMessages({ ...line, action: true }, "x".repeat(1200));
  assert.ok(actions.length === 3);
  for (const l of actions) {
    assertFits(l);
    const text = parseMessage(l).params[1];
    assert.ok(text.startsWith("\x01ACTION x") && text.endsWith("x\x01"), JSON.stringify(text));
  }
  // With a time, every piece carries the server-time tag.
  const tagged = textMessages({ ...line, time: T0 }, "y".repeat(600));
  assert.ok(tagged.every((l) => l.startsWith("@time=2026-11-28T12:00:00.000Z :ana!~ana@irc ")));
});

Deno.test("the budget is counted exactly: 512 bytes with CR LF is one line, 513 is two", () => {
  const line = { source: "ana!~ana@irc", command: "PRIVMSG" as const, target: "#lobby" };
  const overhead = utf8Length(":ana!~ana@irc PRIVMSG #lobby :") + 2;
  assert.equal(textMessages(line, "a".repeat(MAX_LINE_BYTES - overhead)).length, 1);
  assert.equal(textMessages(line, "a".repeat(MAX_LINE_BYTES - overhead + 1)).length, 2);
});

// --- what rooms share -----------------------------------------------------------

Deno.test("IrcFormat.encodeLines: a batch is one buffer of PRIVMSGs from the sender's prefix", () => {
  const out = lines(
    format().encodeLines("#lobby", { id: 1, name: "ana" }, batch("message", "uno", "dos")),
  );
  assert.deepEqual(out, [":ana!~ana@irc PRIVMSG #lobby :uno", ":ana!~ana@irc PRIVMSG #lobby :dos"]);
});

Deno.test("IrcFormat.encodeLines: /me is CTCP ACTION, an IRC notice stays a NOTICE", () => {
  const from = { id: 1, name: "ana" };
  assert.deepEqual(lines(format().encodeLines("#x", from, batch("action", "saluda"))), [
    ":ana!~ana@irc PRIVMSG #x :\x01ACTION saluda\x01",
  ]);
  assert.deepEqual(lines(format().encodeLines("#x", from, batch("notice", "aviso"))), [
    ":ana!~ana@irc NOTICE #x :aviso",
  ]);
});

Deno.test("IrcFormat.encodeLines with server-time tags each line with the batch's time", () => {
  const out = lines(
    format(true).encodeLines("#x", { id: 1, name: "ana" }, batch("message", "a", "b")),
  );
  assert.deepEqual(out, [
    "@time=2026-11-28T12:00:00.000Z :ana!~ana@irc PRIVMSG #x :a",
    "@time=2026-11-28T12:00:00.000Z :ana!~ana@irc PRIVMSG #x :b",
  ]);
});

Deno.test("IrcFormat.encodeLines splits a long line (bytes, multi-byte) and copies short ones as they are", () => {
  const long = "¿qué tal? 你好 👋🏽 ".repeat(80);
  const out = lines(
    format().encodeLines("#lobby", { id: 1, name: "ana" }, batch("action", "corto", long, "fin")),
  );
  assert.equal(out[0], ":ana!~ana@irc PRIVMSG #lobby :\x01ACTION corto\x01");
  assert.equal(out.at(-1), ":ana!~ana@irc PRIVMSG #lobby :\x01ACTION fin\x01");
  const pieces = out.slice(1, -1);
  assert.ok(pieces.length >= 3);
  for (const l of pieces) assertFits(l);
  const texts = pieces.map((l) => parseMessage(l).params[1].slice(8, -1));
  assert.equal(texts.join(""), long);
});

Deno.test("IrcFormat.eventLines: join, part, a line client's move, quit, nick, topic", () => {
  const f = format();
  const ana = { id: 1, name: "ana" };
  const cases: [RoomEvent, string][] = [
    [{ type: "join", room: "#x", who: ana }, ":ana!~ana@irc JOIN :#x"],
    [{ type: "part", room: "#x", who: ana }, ":ana!~ana@irc PART :#x"],
    [{ type: "part", room: "#x", who: ana, reason: "adiós" }, ":ana!~ana@irc PART #x :adiós"],
    [{ type: "part", room: "#x", who: ana, to: "#dev" }, ":ana!~ana@irc PART #x :left for #dev"],
    [{ type: "quit", who: ana, reason: "quit: bye" }, ":ana!~ana@irc QUIT :Quit: bye"],
    [{ type: "nick", who: { id: 1, name: "ana2" }, from: "ana" }, ":ana!~ana@irc NICK :ana2"],
    [{ type: "topic", room: "#x", topic: "t", by: "bea" }, ":bea!bea@line TOPIC #x :t"],
    [{ type: "topic", room: "#x", topic: "", by: null }, ":server!operator@charla TOPIC #x :"],
  ];
  for (const [event, expected] of cases) assert.deepEqual(f.eventLines(event), [expected]);
  assert.deepEqual(lines(f.encodeEvent(cases[0][0])), [cases[0][1]]);
});

Deno.test("IrcFormat.eventLines: the operator's words are NOTICEs from server, to a room or to *", () => {
  const f = format(true);
  assert.deepEqual(f.eventLines({ type: "broadcast", room: "#x", text: "hola" }), [
    "@time=2026-11-28T12:00:00.000Z :server!operator@charla NOTICE #x :hola",
  ]);
  assert.deepEqual(format().eventLines({ type: "broadcast", room: null, text: "cierro a las 8" }), [
    ":server!operator@charla NOTICE * :cierro a las 8",
  ]);
});

Deno.test("IrcFormat.eventLines: message and action events carry their own time", () => {
  const at = T0 - 60_000;
  const f = format(true);
  assert.deepEqual(
    f.eventLines({
      type: "action",
      room: "#x",
      from: { id: 2, name: "bea" },
      text: "ríe",
      time: at,
    }),
    ["@time=2026-11-28T11:59:00.000Z :bea!~bea@irc PRIVMSG #x :\x01ACTION ríe\x01"],
  );
});

Deno.test("IrcFormat.eventLines: a topic or part message too long for one line is cut to fit", () => {
  const f = format();
  const [topic] = f.eventLines({ type: "topic", room: "#x", topic: "ñ".repeat(400), by: "bea" });
  assertFits(topic);
  const [part] = f.eventLines({
    type: "part",
    room: "#x",
    who: { id: 1, name: "a" },
    reason: "z".repeat(600),
  });
  assertFits(part);
});

// --- numerics -----------------------------------------------------------------

Deno.test("numeric puts the recipient's nick first, * before registration, and fits 512 bytes", () => {
  assert.equal(numeric({ server: "s", nick: "" }, "ERR_NOTREGISTERED", ["no"]), ":s 451 * :no");
  assert.equal(numeric({ server: "s", nick: "ana" }, "RPL_UNAWAY", ["back"]), ":s 305 ana :back");
  const long = numeric({ server: "s", nick: "ana" }, "RPL_TOPIC", ["#x", "t".repeat(700)]);
  assertFits(long);
  assert.match(long, /^:s 332 ana #x :t+$/);
});

Deno.test("namesLines splits names over several 353s within 512 bytes, then one 366", () => {
  const names = Array.from({ length: 100 }, (_, i) => `persona_${i}`);
  const out = namesLines({ server: "charla", nick: "ana" }, "#big", "=", names);
  assert.ok(out.length > 3);
  for (const l of out) assertFits(l);
  assert.equal(out.at(-1), ":charla 366 ana #big :End of /NAMES list");
  const listed = out.slice(0, -1).flatMap((l) => parseMessage(l).params[3].split(" "));
  assert.deepEqual(listed, names);
  assert.deepEqual(namesLines({ server: "c", nick: "a" }, "#s", "@", ["@a"], null), [
    ":c 353 a @ #s :@a",
  ]);
});

Deno.test("wordLines puts a WHOIS's rooms on as few lines as fit", () => {
  const rooms = Array.from({ length: 50 }, (_, i) => `@#sala-${i}-con-nombre-largo`);
  const out = wordLines({ server: "charla", nick: "ana" }, "RPL_WHOISCHANNELS", ["bea"], rooms);
  assert.ok(out.length > 1);
  for (const l of out) assertFits(l);
  assert.deepEqual(out.flatMap((l) => parseMessage(l).params[2].split(" ")), rooms);
});

Deno.test("memberPrefix: @ over +, and both with multi-prefix", () => {
  assert.equal(memberPrefix(false, false, false), "");
  assert.equal(memberPrefix(false, true, false), "+");
  assert.equal(memberPrefix(true, true, false), "@");
  assert.equal(memberPrefix(true, true, true), "@+");
  assert.equal(memberPrefix(false, true, true), "+");
});

Deno.test("errorNumeric maps each of the core's errors to the numeric IRC clients expect", () => {
  const to = { server: "charla", nick: "ana" };
  const code = (c: ErrorCode, command: string, target?: string) =>
    errorNumeric(to, c, "why", { command, target })?.split(" ").slice(1, 4).join(" ") ?? null;
  assert.equal(code("usage", "JOIN"), "461 ana JOIN");
  assert.equal(code("unknown_command", "FOO"), "421 ana FOO");
  assert.equal(code("no_such_name", "PRIVMSG", "bea"), "401 ana bea");
  assert.equal(code("no_such_room", "WHO", "#x"), "403 ana #x");
  assert.equal(code("bad_name", "NICK", "[a]"), "432 ana [a]");
  assert.equal(code("name_taken", "NICK", "bea"), "433 ana bea");
  assert.equal(code("bad_room", "JOIN", "#a.b"), "479 ana #a.b");
  assert.equal(code("not_in_room", "PART", "#x"), "442 ana #x");
  assert.equal(code("not_in_room", "PRIVMSG", "#x"), "404 ana #x");
  assert.equal(code("not_operator", "TOPIC", "#x"), "482 ana #x");
  assert.equal(code("too_long", "PRIVMSG"), "417 ana :why");
  assert.equal(code("too_many_rooms", "JOIN", "#x"), "405 ana #x");
  assert.equal(code("password", "PASS"), "464 ana :why");
  // What IRC has no numeric for is shown as a NOTICE by the transport.
  for (const c of ["flood", "not_relay", "denied", "full", "slow"] as const) {
    assert.equal(code(c, "PRIVMSG"), null, c);
  }
});

// --- history ------------------------------------------------------------------

const HISTORY: HistoryLine[] = [
  { room: "#x", time: T0, from: "bea", kind: "message", text: "hola" },
  { room: "#x", time: T0 + 1000, from: "bea", kind: "action", text: "saluda" },
  { room: "#x", time: T0 + 2000, from: "server", kind: "notice", text: "cierro a las 8" },
];

Deno.test("historyLines without server-time: NOTICEs from the server that read as history", () => {
  const out = historyLines(HISTORY, {
    server: "charla",
    nick: "ana",
    channel: "#x",
    serverTime: false,
    clock: (ms) => (ms === T0 ? "12:00" : "12:01"),
  });
  assert.deepEqual(out, [
    ":charla NOTICE #x :last 3 lines of #x:",
    ":charla NOTICE #x :[12:00] <bea> hola",
    ":charla NOTICE #x :[12:01] * bea saluda",
    ":charla NOTICE #x :[12:01] <server> cierro a las 8",
    ":charla NOTICE #x :end of history",
  ]);
});

Deno.test("historyLines with server-time: the messages they were, each with its own time", () => {
  const out = historyLines(HISTORY, {
    server: "charla",
    nick: "ana",
    channel: "#x",
    serverTime: true,
    clock: () => "never used",
  });
  assert.deepEqual(out, [
    ":charla NOTICE #x :last 3 lines of #x:",
    "@time=2026-11-28T12:00:00.000Z :bea!bea@history PRIVMSG #x :hola",
    "@time=2026-11-28T12:00:01.000Z :bea!bea@history PRIVMSG #x :\x01ACTION saluda\x01",
    "@time=2026-11-28T12:00:02.000Z :server!operator@charla NOTICE #x :cierro a las 8",
    ":charla NOTICE #x :end of history",
  ]);
});

Deno.test("historyLines splits a long history line like a live one", () => {
  const long: HistoryLine = {
    room: "#x",
    time: T0,
    from: "bea",
    kind: "message",
    text: "w ".repeat(400),
  };
  for (const serverTime of [false, true]) {
    const out = historyLines([long], {
      server: "c",
      nick: "a",
      channel: "#x",
      serverTime,
      clock: () => "12:00",
    });
    assert.ok(out.length >= 4);
    for (const l of out) assertFits(l.replace(/^@\S+ /, ""));
  }
});

// --- masks, modes, LIST, WHOX ------------------------------------------------------

Deno.test("matchMask: * and ?, ASCII case only, other characters literal", () => {
  assert.ok(matchMask("*", "anyone"));
  assert.ok(matchMask("COOL*", "coolNick"));
  assert.ok(matchMask("a?a", "ANA"));
  assert.ok(!matchMask("a?a", "anna"));
  assert.ok(matchMask("#a.b*", "#a.bc"));
  assert.ok(!matchMask("#a.b", "#axb"));
  assert.ok(!matchMask("Ñ*", "ñandú")); // CASEMAPPING=ascii: Ñ and ñ differ
});

Deno.test("parseModeChanges and formatModeChanges: signs, letters and the arguments of o, v, b", () => {
  assert.deepEqual(parseModeChanges(["+t"]), [{ sign: "+", mode: "t" }]);
  assert.deepEqual(parseModeChanges(["-t+o", "ana"]), [
    { sign: "-", mode: "t" },
    { sign: "+", mode: "o", arg: "ana" },
  ]);
  assert.deepEqual(parseModeChanges(["b"]), [{ sign: "+", mode: "b" }]);
  assert.deepEqual(parseModeChanges(["+ov", "ana"]), [
    { sign: "+", mode: "o", arg: "ana" },
    { sign: "+", mode: "v" },
  ]);
  assert.deepEqual(
    formatModeChanges([
      { sign: "+", mode: "o", arg: "a" },
      { sign: "+", mode: "v", arg: "b" },
      { sign: "-", mode: "t" },
    ]),
    ["+ov-t", "a", "b"],
  );
});

Deno.test("LIST filters: masks, negated masks and user counts (ELIST=MNU); times are ignored", () => {
  const filters = parseListFilters("#ch*,!*2,>0,C<5,T>1");
  assert.deepEqual(filters, [
    { kind: "mask", mask: "#ch*", negate: false },
    { kind: "mask", mask: "*2", negate: true },
    { kind: "users", more: true, count: 0 },
  ]);
  assert.ok(listMatches(filters, "#chan1", 3));
  assert.ok(!listMatches(filters, "#chan2", 3));
  assert.ok(!listMatches(filters, "#other", 3));
  assert.ok(listMatches(parseListFilters(""), "#any", 0));
  assert.ok(listMatches(parseListFilters("#a,#b"), "#B", 1));
  assert.ok(!listMatches(parseListFilters("<2"), "#a", 2));
});

Deno.test("whoxFields answers in WHOX order whatever the order asked, and discloses no address", () => {
  const person = {
    channel: "#c",
    user: "~ana",
    host: "irc",
    server: "charla",
    nick: "ana",
    flags: "H@",
    idleSeconds: 7,
    realname: "Ana Pérez",
  };
  assert.deepEqual(whoxFields("rotcuihsnfdla", "123", person), [
    "123",
    "#c",
    "~ana",
    "255.255.255.255",
    "irc",
    "charla",
    "ana",
    "H@",
    "0",
    "7",
    "0",
    "n/a",
    "Ana Pérez",
  ]);
  assert.deepEqual(whoxFields("t", "", person), ["0"]);
  // A real name with spaces before the last field would break the line: it never is, as r is last.
  assert.deepEqual(whoxFields("rn", "", { ...person, realname: "" }), ["ana", "*"]);
});
