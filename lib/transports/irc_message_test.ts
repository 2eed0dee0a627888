import assert from "node:assert/strict";
import {
  ACTION_OVERHEAD,
  BASE_ISUPPORT,
  CASEMAPPING,
  checkChannel,
  checkNick,
  decodeAction,
  encodeAction,
  encodeLine,
  escapeTagValue,
  foldCase,
  formatMessage,
  type IrcMessage,
  IrcParseError,
  type IrcParseErrorReason,
  isupportLines,
  MAX_CLIENT_TAG_BYTES,
  MAX_LINE_BYTES,
  MAX_TAG_SECTION_BYTES,
  numericReply,
  NUMERICS,
  parseCtcp,
  parseMessage,
  parseSource,
  serverTime,
  splitText,
  standardReply,
  textBudget,
  unescapeTagValue,
  utf8Length,
} from "./irc_message.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A message as the parser returns it, for deepEqual. */
function msg(
  command: string,
  params: string[] = [],
  source: string | null = null,
  tags: Record<string, string> = {},
): IrcMessage {
  return { tags: new Map(Object.entries(tags)), source, command, params };
}

function assertParseError(line: string | Uint8Array, reason: IrcParseErrorReason): IrcParseError {
  let caught: unknown;
  try {
    parseMessage(line);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof IrcParseError, `expected an IrcParseError for ${String(line)}`);
  assert.equal(caught.reason, reason, `reason for ${JSON.stringify(String(line))}`);
  assert.equal(caught.name, "IrcParseError");
  return caught;
}

// --- parsing: parts ---------------------------------------------------------

Deno.test("parseMessage() reads a bare command", () => {
  assert.deepEqual(parseMessage("COMMAND"), msg("COMMAND"));
});

Deno.test("parseMessage() upper-cases the command and keeps params as sent", () => {
  assert.deepEqual(parseMessage("privmsg #Lobby Hola"), msg("PRIVMSG", ["#Lobby", "Hola"]));
});

Deno.test("parseMessage() reads a source, middle params and a trailing param", () => {
  assert.deepEqual(
    parseMessage(":coolguy foo bar baz :asdf quux"),
    msg("FOO", ["bar", "baz", "asdf quux"], "coolguy"),
  );
  assert.deepEqual(
    parseMessage(":ana!ana@127.0.0.1 PRIVMSG #lobby :hola a todos"),
    msg("PRIVMSG", ["#lobby", "hola a todos"], "ana!ana@127.0.0.1"),
  );
});

Deno.test("parseMessage() reads a three-digit numeric as the command", () => {
  assert.deepEqual(
    parseMessage(":charla 001 ana :Welcome to charla, ana"),
    msg("001", ["ana", "Welcome to charla, ana"], "charla"),
  );
});

Deno.test("parseMessage() refuses commands that are neither letters nor three digits", () => {
  for (const line of ["12", "1234", "PRIV3MSG", "PRIV-MSG", ":src 0001 x", "ñu x"]) {
    assertParseError(line, "bad-command");
  }
});

Deno.test("parseMessage() keeps a trailing param of spaces only", () => {
  assert.deepEqual(
    parseMessage(":coolguy foo bar baz :  "),
    msg("FOO", ["bar", "baz", "  "], "coolguy"),
  );
  assert.deepEqual(
    parseMessage(":coolguy foo bar baz :  asdf quux "),
    msg("FOO", ["bar", "baz", "  asdf quux "], "coolguy"),
  );
});

Deno.test("parseMessage() keeps an empty trailing param", () => {
  assert.deepEqual(parseMessage("foo bar baz :"), msg("FOO", ["bar", "baz", ""]));
  assert.deepEqual(parseMessage("AWAY :"), msg("AWAY", [""]));
});

Deno.test("parseMessage() keeps a trailing param that starts with a colon", () => {
  assert.deepEqual(parseMessage("foo bar baz ::asdf"), msg("FOO", ["bar", "baz", ":asdf"]));
  assert.deepEqual(
    parseMessage(":coolguy PRIVMSG bar :lol :) "),
    msg("PRIVMSG", ["bar", "lol :) "], "coolguy"),
  );
});

Deno.test("parseMessage() treats runs of spaces as one and ignores spaces at the end", () => {
  assert.deepEqual(
    parseMessage(":gravel.mozilla.org 432  #momo :Erroneous Nickname: Illegal characters"),
    msg("432", ["#momo", "Erroneous Nickname: Illegal characters"], "gravel.mozilla.org"),
  );
  assert.deepEqual(parseMessage(":src AWAY "), msg("AWAY", [], "src"));
  assert.deepEqual(
    parseMessage(":services.esper.net MODE #foo-bar +o foobar  "),
    msg("MODE", ["#foo-bar", "+o", "foobar"], "services.esper.net"),
  );
  assert.deepEqual(parseMessage("  PING   x"), msg("PING", ["x"]));
});

Deno.test("parseMessage() reads a JOIN target the same with or without a colon", () => {
  assert.deepEqual(parseMessage(":src JOIN #chan"), parseMessage(":src JOIN :#chan"));
});

Deno.test("parseMessage() keeps every one of more than 15 params", () => {
  const middles = Array.from({ length: 20 }, (_, i) => `p${i + 1}`);
  assert.deepEqual(parseMessage(`CMD ${middles.join(" ")}`).params, middles);
  const withTrailing = parseMessage(`CMD ${middles.join(" ")} :last one`);
  assert.equal(withTrailing.params.length, 21);
  assert.equal(withTrailing.params[20], "last one");
});

Deno.test("parseMessage() keeps odd characters inside a source", () => {
  assert.equal(parseMessage(":cool\tguy foo bar baz").source, "cool\tguy");
  assert.equal(
    parseMessage(":coolguy!ag@net\x035w\x03ork.admin PRIVMSG foo :bar baz").source,
    "coolguy!ag@net\x035w\x03ork.admin",
  );
});

Deno.test("parseMessage() refuses a colon with no source, and a source with no command", () => {
  assertParseError(": PRIVMSG x", "bad-source");
  assertParseError(":ana", "bad-source");
  assertParseError(":ana   ", "bad-source");
});

Deno.test("parseMessage() calls a line of nothing or spaces empty", () => {
  assertParseError("", "empty");
  assertParseError("   ", "empty");
  assertParseError("\r\n", "empty");
  assertParseError(new Uint8Array([0x20, 0x0d, 0x0a]), "empty");
});

Deno.test("parseMessage() refuses tags with no command", () => {
  assertParseError("@a=b", "bad-command");
  assertParseError("@a=b   ", "bad-command");
});

Deno.test("parseMessage() ignores a final CR LF or LF", () => {
  assert.deepEqual(parseMessage("PING x\r\n"), msg("PING", ["x"]));
  assert.deepEqual(parseMessage("PING x\n"), msg("PING", ["x"]));
  assert.deepEqual(parseMessage(encoder.encode("PING :a b\r\n")), msg("PING", ["a b"]));
});

Deno.test("parseMessage() refuses NUL, CR or LF inside the line, naming the command", () => {
  const error = assertParseError("PRIVMSG #a :x\0y", "forbidden-character");
  assert.equal(error.command, "PRIVMSG");
  assertParseError("PRIVMSG #a :x\ry", "forbidden-character");
  assertParseError("PING a\nPING b", "forbidden-character");
});

// --- parsing: tags ------------------------------------------------------------

Deno.test("parseMessage() reads tags with and without values", () => {
  assert.deepEqual(
    parseMessage("@a=b;c=32;k;rt=ql7 foo"),
    msg("FOO", [], null, { a: "b", c: "32", k: "", rt: "ql7" }),
  );
  // "h=" (empty value) is the same as "h" alone.
  assert.deepEqual(
    parseMessage("@c;h=;a=b :quux ab cd"),
    msg("AB", ["cd"], "quux", { c: "", h: "", a: "b" }),
  );
});

Deno.test("parseMessage() reads vendor and client-only tag keys", () => {
  const m = parseMessage(
    "@tag1=value1;tag2;vendor1/tag3=value2;vendor2/tag4=;+example.com/x=y COMMAND param1 param2 :param3 param3",
  );
  assert.deepEqual(
    m,
    msg("COMMAND", ["param1", "param2", "param3 param3"], null, {
      tag1: "value1",
      tag2: "",
      "vendor1/tag3": "value2",
      "vendor2/tag4": "",
      "+example.com/x": "y",
    }),
  );
});

Deno.test("parseMessage() unescapes \\: \\s \\\\ \\r \\n in tag values", () => {
  assert.equal(parseMessage("@a=b\\\\and\\nk;c=72\\s45;d=gh\\:764 foo").tags.get("a"), "b\\and\nk");
  assert.deepEqual(
    [...parseMessage("@a=b\\\\and\\nk;c=72\\s45;d=gh\\:764 foo").tags],
    [["a", "b\\and\nk"], ["c", "72 45"], ["d", "gh;764"]],
  );
  assert.equal(
    parseMessage("@foo=\\\\\\\\\\:\\\\s\\s\\r\\n COMMAND").tags.get("foo"),
    "\\\\;\\s \r\n",
  );
});

Deno.test("parseMessage() drops the backslash of an unknown escape and a final lone one", () => {
  assert.equal(parseMessage("@tag1=value\\1 COMMAND").tags.get("tag1"), "value1");
  assert.equal(parseMessage("@tag1=value\\\\ntest COMMAND").tags.get("tag1"), "value\\ntest");
  assert.equal(parseMessage("@tag1=value\\ COMMAND").tags.get("tag1"), "value");
  assert.equal(parseMessage("@foo=\\ COMMAND").tags.get("foo"), "");
});

Deno.test("parseMessage() keeps the last of a repeated tag", () => {
  const m = parseMessage("@tag1=1;tag2=3;tag3=4;tag1=5;vendor/tag2=8 COMMAND");
  assert.equal(m.tags.get("tag1"), "5");
  assert.equal(m.tags.get("tag2"), "3");
  assert.equal(m.tags.get("vendor/tag2"), "8");
});

Deno.test("parseMessage() skips empty tags and refuses bad tag keys", () => {
  assert.deepEqual(parseMessage("@a=1;;b; CMD").tags, new Map([["a", "1"], ["b", ""]]));
  for (const tags of ["a_b", "a.b", "+", "/x", "a/", "=x", "ok=1;é=2"]) {
    assertParseError(`@${tags} CMD`, "bad-tag");
  }
});

Deno.test("escapeTagValue() and unescapeTagValue() round-trip every special character", () => {
  const value = "a;b c\\d\re\nf;; \\\\";
  const escaped = escapeTagValue(value);
  assert.doesNotMatch(escaped, /[; \r\n]/);
  assert.equal(unescapeTagValue(escaped), value);
  assert.equal(escapeTagValue("plain"), "plain");
});

// --- parsing: limits and bytes --------------------------------------------------

Deno.test("parseMessage() accepts a line of exactly 512 bytes with CR LF", () => {
  const line = "PING " + "x".repeat(MAX_LINE_BYTES - 7); // 510 bytes
  assert.equal(line.length, 510);
  assert.equal(parseMessage(line).params[0].length, 505);
  assert.equal(parseMessage(line + "\r\n").params[0].length, 505);
  assert.equal(parseMessage(encoder.encode(line + "\r\n")).params[0].length, 505);
});

Deno.test("parseMessage() refuses a line of 513 bytes with CR LF, as string and as bytes", () => {
  const line = "PING " + "x".repeat(MAX_LINE_BYTES - 6); // 511 bytes
  assertParseError(line, "line-too-long");
  assertParseError(encoder.encode(line + "\r\n"), "line-too-long");
});

Deno.test("parseMessage() counts the limit in UTF-8 bytes, not characters", () => {
  // "PRIVMSG #a :" is 12 bytes; 166 × 3-byte 你 = 498; 510 in all.
  const fits = "PRIVMSG #a :" + "你".repeat(166);
  assert.equal(utf8Length(fits), 510);
  assert.equal(parseMessage(fits).params[1].length, 166);
  assert.equal(parseMessage(encoder.encode(fits)).params[1].length, 166);
  assertParseError(fits + "a", "line-too-long");
  assertParseError(encoder.encode(fits + "a"), "line-too-long");
});

Deno.test("parseMessage() does not count the tags against the 512 bytes", () => {
  const tags = "@+x=" + "a".repeat(MAX_CLIENT_TAG_BYTES - 3); // 4094 bytes after "@"
  const rest = "PING " + "x".repeat(MAX_LINE_BYTES - 7); // 510 bytes
  const m = parseMessage(`${tags} ${rest}`);
  assert.equal(m.tags.get("+x")?.length, MAX_CLIENT_TAG_BYTES - 3);
  assert.equal(parseMessage(encoder.encode(`${tags} ${rest}\r\n`)).command, "PING");
  assertParseError(`${tags} ${rest}x`, "line-too-long");
});

Deno.test("parseMessage() refuses a client's tags over 4094 bytes, and takes 8191 when told", () => {
  const over = "@+x=" + "a".repeat(MAX_CLIENT_TAG_BYTES - 2); // 4095 bytes after "@"
  assertParseError(`${over} PING x`, "tags-too-long");
  assertParseError(encoder.encode(`${over} PING x`), "tags-too-long");
  // irctest's TagsTestCase.testLineTooLong sends this one and expects 417:
  assertParseError(`@+clientOnlyTagExample=${"a".repeat(4096)} PRIVMSG #xyz hi!`, "tags-too-long");

  const serverMax = { maxTagBytes: MAX_TAG_SECTION_BYTES - 2 };
  const full = "@x=" + "a".repeat(MAX_TAG_SECTION_BYTES - 2 - 2); // "@" + 8189 + " " = 8191
  assert.equal(parseMessage(`${full} PING x`, serverMax).command, "PING");
  assert.throws(
    () => parseMessage(`${full}a PING x`, serverMax),
    (e) => e instanceof IrcParseError && e.reason === "tags-too-long",
  );
});

Deno.test("parseMessage() reads bytes as UTF-8 and refuses invalid UTF-8 naming the command", () => {
  assert.deepEqual(
    parseMessage(encoder.encode(":ana PRIVMSG #sala :¡hola! 你好 😀")),
    msg("PRIVMSG", ["#sala", "¡hola! 你好 😀"], "ana"),
  );
  const bad = new Uint8Array([...encoder.encode("privmsg bar hi"), 0xaa]);
  const error = assertParseError(bad, "invalid-utf8");
  assert.equal(error.command, "PRIVMSG");
  const realname = new Uint8Array([...encoder.encode("USER u * * :i"), 0xe8, 0x72, 0x63, 0xe9]);
  assert.equal(assertParseError(realname, "invalid-utf8").command, "USER");
  assert.equal(
    assertParseError(new Uint8Array([0xff, 0x20, 0x41]), "invalid-utf8").command,
    undefined,
  );
});

Deno.test("parseMessage() reads a line from the middle of a larger buffer", () => {
  const buffer = encoder.encode("PING a\r\nPRIVMSG #x :yes\r\nPING b\r\n");
  assert.deepEqual(parseMessage(buffer.subarray(8, 25)), msg("PRIVMSG", ["#x", "yes"]));
});

// --- formatting -----------------------------------------------------------------

Deno.test("formatMessage() writes the last param as trailing only when it must", () => {
  const f = (...params: string[]) => formatMessage({ command: "PRIVMSG", params });
  assert.equal(f("#a", "word"), "PRIVMSG #a word");
  assert.equal(f("#a", ""), "PRIVMSG #a :");
  assert.equal(f("#a", ":)"), "PRIVMSG #a ::)");
  assert.equal(f("#a", "two words"), "PRIVMSG #a :two words");
  assert.equal(f("#a", "  "), "PRIVMSG #a :  ");
  assert.equal(f("#a", "x:y"), "PRIVMSG #a x:y");
  assert.equal(formatMessage({ command: "QUIT" }), "QUIT");
});

Deno.test("formatMessage() writes a source and escaped tags", () => {
  assert.equal(
    formatMessage({
      tags: new Map([["time", "2026-11-28T12:00:00.000Z"], ["a", "x y;z"], ["k", ""]]),
      source: "ana!ana@charla",
      command: "PRIVMSG",
      params: ["#lobby", "hola"],
    }),
    "@time=2026-11-28T12:00:00.000Z;a=x\\sy\\:z;k :ana!ana@charla PRIVMSG #lobby hola",
  );
  assert.equal(
    formatMessage({ tags: { msgid: "1" }, command: "PING", params: ["x"] }),
    "@msgid=1 PING x",
  );
  assert.equal(formatMessage({ tags: {}, source: null, command: "PING", params: ["x"] }), "PING x");
});

Deno.test("formatMessage() refuses what no line can carry", () => {
  const bad: Parameters<typeof formatMessage>[0][] = [
    { command: "PRIV MSG" },
    { command: "1234" },
    { command: "" },
    { command: "PRIVMSG", params: ["", "x"] },
    { command: "PRIVMSG", params: ["a b", "x"] },
    { command: "PRIVMSG", params: [":a", "x"] },
    { command: "PRIVMSG", params: ["#a", "x\r\nQUIT"] },
    { command: "PRIVMSG", params: ["#a", "x\0"] },
    { command: "PING", source: "a b" },
    { command: "PING", source: "" },
    { command: "PING", tags: { "bad key": "x" } },
    { command: "PING", tags: { a: "x\0" } },
  ];
  for (const message of bad) {
    assert.throws(() => formatMessage(message), RangeError, JSON.stringify(message));
  }
});

Deno.test("formatMessage() and parseMessage() round-trip awkward messages", () => {
  const messages: IrcMessage[] = [
    msg("PRIVMSG", ["#lobby", ""], "ana!a@h"),
    msg("PRIVMSG", ["#lobby", "   "], "ana!a@h"),
    msg("PRIVMSG", ["#lobby", ":colon first"], "ana!a@h"),
    msg("PRIVMSG", ["#lobby", "trailing space "], "ana!a@h"),
    msg("CMD", Array.from({ length: 18 }, (_, i) => `p${i}`).concat(["last words"])),
    msg("TAGMSG", ["#x"], "s", { a: "\\;\\s \r\n", "+draft/react": "👍", empty: "" }),
    msg("353", ["ana", "=", "#lobby", "ana bea carlos"], "charla"),
  ];
  for (const m of messages) {
    assert.deepEqual(parseMessage(formatMessage(m), { maxTagBytes: 8189 }), m);
  }
});

Deno.test("encodeLine() gives the UTF-8 bytes with CR LF", () => {
  const bytes = encodeLine({ command: "PRIVMSG", params: ["#a", "ñ"] });
  assert.equal(decoder.decode(bytes), "PRIVMSG #a ñ\r\n");
  assert.equal(bytes.length, 15);
});

Deno.test("utf8Length() agrees with TextEncoder, lone surrogates included", () => {
  const samples = [
    "",
    "abc",
    "ñandú",
    "你好",
    "😀👍🏽",
    "\ud800",
    "a\udc00b",
    "\ud83d",
    "x\ud83d\ude00",
  ];
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 300; i++) {
    samples.push(
      Array.from(
        { length: 1 + Math.floor(random() * 10) },
        () => String.fromCharCode(Math.floor(random() * 0x10000)),
      ).join(""),
    );
  }
  for (const s of samples) assert.equal(utf8Length(s), encoder.encode(s).length, JSON.stringify(s));
});

// --- splitting long text --------------------------------------------------------

const LOBBY = { source: "ana!ana@127.0.0.1", command: "PRIVMSG", target: "#lobby" };

/** The lines a server would send for `text`, each checked against every rule. */
function splitIntoLines(text: string, line = LOBBY): string[] {
  const budget = textBudget(line);
  const pieces = splitText(text, budget);
  assert.equal(pieces.join(""), text, "the pieces put together are the text");
  const lines = pieces.map((piece) =>
    formatMessage({ source: line.source, command: line.command, params: [line.target, piece] }) +
    "\r\n"
  );
  for (const [i, wire] of lines.entries()) {
    const bytes = encoder.encode(wire);
    assert.ok(bytes.length <= MAX_LINE_BYTES, `line ${i} is ${bytes.length} bytes`);
    // No cut inside a character: each piece is valid UTF-8 on its own.
    assert.equal(new TextDecoder("utf-8", { fatal: true }).decode(bytes), wire);
    assert.equal(parseMessage(bytes).params[1], pieces[i]);
  }
  return pieces;
}

Deno.test("splitText() returns text that fits as one piece", () => {
  assert.deepEqual(splitText("hola", 4), ["hola"]);
  assert.deepEqual(splitText("", 10), [""]);
  assert.deepEqual(splitIntoLines("a".repeat(textBudget(LOBBY))), ["a".repeat(textBudget(LOBBY))]);
});

Deno.test("splitText() fills lines to exactly 512 bytes when it can", () => {
  const budget = textBudget(LOBBY);
  const pieces = splitIntoLines("a".repeat(budget * 2 + 5));
  assert.deepEqual(pieces.map((p) => p.length), [budget, budget, 5]);
  // With the ":" a trailing text may need (this one has no space, so goes without):
  assert.equal(utf8Length(`:${LOBBY.source} PRIVMSG #lobby :${pieces[0]}\r\n`), MAX_LINE_BYTES);
});

Deno.test("splitText() splits 2,000 bytes of 4-byte emoji without cutting one", () => {
  const text = "😀".repeat(500);
  assert.equal(utf8Length(text), 2000);
  const budget = textBudget(LOBBY);
  const pieces = splitIntoLines(text);
  const perLine = Math.floor(budget / 4);
  assert.equal(pieces.length, Math.ceil(500 / perLine));
  for (const piece of pieces.slice(0, -1)) assert.equal(utf8Length(piece), perLine * 4);
});

Deno.test("splitText() cuts after a space near the end, keeping words whole", () => {
  const words = Array.from({ length: 200 }, (_, i) => `palabra${i}`);
  const text = words.join(" ");
  const pieces = splitIntoLines(text);
  assert.ok(pieces.length > 1);
  for (const piece of pieces.slice(0, -1)) assert.ok(piece.endsWith(" "), JSON.stringify(piece));
  // Every word arrives whole in one piece.
  assert.deepEqual(pieces.flatMap((p) => p.split(" ").filter((w) => w !== "")), words);
});

Deno.test("splitText() cuts inside a word when the last space is too far back", () => {
  const text = "a " + "x".repeat(100);
  const pieces = splitText(text, 40);
  assert.deepEqual(pieces, ["a " + "x".repeat(38), "x".repeat(40), "x".repeat(22)]);
});

Deno.test("splitText() keeps graphemes whole: flags, families, accents", () => {
  const family = "👨‍👩‍👧‍👦"; // 25 bytes, one grapheme
  const flag = "🇦🇷"; // 8 bytes
  const accented = "e\u0301"; // 3 bytes
  for (const unit of [family, flag, accented]) {
    const text = unit.repeat(40);
    const pieces = splitText(text, 30);
    assert.equal(pieces.join(""), text);
    for (const piece of pieces) {
      assert.ok(utf8Length(piece) <= 30);
      assert.equal(piece.split(unit).join(""), "", `a cut inside ${JSON.stringify(unit)}`);
    }
  }
});

Deno.test("splitText() cuts a grapheme longer than a piece between its code points", () => {
  const zalgo = "a" + "\u0301".repeat(60); // one grapheme of 121 bytes
  const pieces = splitText(zalgo, 20);
  assert.equal(pieces.join(""), zalgo);
  for (const piece of pieces) assert.ok(utf8Length(piece) <= 20);
});

Deno.test("splitText() never loses a byte on random text and budgets", () => {
  let seed = 99;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const alphabet = ["a", "b", " ", " ", "ñ", "你", "😀", "e\u0301", "🇦🇷", ":", "\x01"];
  for (let round = 0; round < 300; round++) {
    const text = Array.from(
      { length: Math.floor(random() * 120) },
      () => alphabet[Math.floor(random() * alphabet.length)],
    ).join("");
    const max = 4 + Math.floor(random() * 40);
    const pieces = splitText(text, max);
    assert.equal(pieces.join(""), text);
    for (const piece of pieces) {
      assert.ok(utf8Length(piece) <= max, `${JSON.stringify(piece)} over ${max}`);
      assert.ok(piece !== "" || text === "", "no empty piece");
      assert.equal(decoder.decode(encoder.encode(piece)), piece, "no lone surrogate");
    }
  }
});

Deno.test("splitText() refuses a budget under 4 bytes and text with line breaks", () => {
  assert.throws(() => splitText("abc", 3), RangeError);
  assert.throws(() => splitText("abc", 4.5), RangeError);
  assert.throws(() => splitText("a\nb", 10), RangeError);
  assert.throws(() => splitText("a\rb", 10), RangeError);
});

Deno.test("textBudget() counts the source, command, target and CTCP ACTION wrapping", () => {
  assert.equal(
    textBudget({ source: "a!b@c", command: "NOTICE", target: "bea" }),
    512 - ":a!b@c NOTICE bea :\r\n".length,
  );
  assert.equal(
    textBudget({ ...LOBBY, action: true }),
    textBudget(LOBBY) - ACTION_OVERHEAD,
  );
  // ":ñ NOTICE x :\r\n" is 16 bytes: ñ takes 2.
  assert.equal(textBudget({ source: "ñ", command: "NOTICE", target: "x" }), 512 - 16);
});

Deno.test("splitText() with an ACTION budget keeps every wrapped line within 512 bytes", () => {
  const line = { ...LOBBY, action: true };
  const pieces = splitText("baila ".repeat(200), textBudget(line));
  assert.ok(pieces.length > 1);
  for (const piece of pieces) {
    const wire = formatMessage({
      source: line.source,
      command: "PRIVMSG",
      params: [line.target, encodeAction(piece)],
    });
    assert.ok(utf8Length(wire) + 2 <= MAX_LINE_BYTES);
    assert.equal(decodeAction(parseMessage(wire).params[1]), piece);
  }
});

// --- CTCP -----------------------------------------------------------------------

Deno.test("encodeAction() and decodeAction() round-trip, spaces and colons included", () => {
  for (const text of ["waves", "", " leading", "a :b", "😀"]) {
    assert.equal(decodeAction(encodeAction(text)), text);
  }
});

Deno.test("decodeAction() tolerates a missing final \\x01", () => {
  assert.equal(decodeAction("\x01ACTION waves"), "waves");
  assert.equal(decodeAction("\x01ACTION"), "");
  assert.equal(decodeAction("\x01ACTION\x01"), "");
});

Deno.test("decodeAction() returns null for text that is no ACTION", () => {
  for (
    const text of [
      "waves",
      "ACTION waves",
      "\x01VERSION\x01",
      "\x01ACTIONS x\x01",
      "\x01",
      "\x01\x01",
      "",
    ]
  ) {
    assert.equal(decodeAction(text), null, JSON.stringify(text));
  }
});

Deno.test("parseCtcp() reads other CTCP queries and their parameters", () => {
  assert.deepEqual(parseCtcp("\x01VERSION\x01"), { command: "VERSION", params: "" });
  assert.deepEqual(parseCtcp("\x01PING 1234 5678\x01"), { command: "PING", params: "1234 5678" });
  assert.deepEqual(parseCtcp("\x01PING 1234"), { command: "PING", params: "1234" });
  assert.equal(parseCtcp("plain"), null);
});

// --- names ----------------------------------------------------------------------

Deno.test("foldCase() folds A-Z only, as CASEMAPPING=ascii says", () => {
  assert.equal(CASEMAPPING, "ascii");
  assert.equal(foldCase("Ana_B-1"), "ana_b-1");
  assert.equal(foldCase("#LOBBY"), "#lobby");
  // rfc1459 casemapping would fold these; ascii must not.
  assert.equal(foldCase("[]\\~^"), "[]\\~^");
  assert.equal(foldCase("ÑANDÚ"), "ÑandÚ");
  assert.equal(foldCase("ÀÉÎ"), "ÀÉÎ");
});

Deno.test("checkNick() accepts charla names: 1-32 letters, digits, _ and -", () => {
  for (const nick of ["a", "Ana", "ana_1", "bea-2", "A".repeat(32), "7up", "_", "-x"]) {
    assert.equal(checkNick(nick), null, nick);
  }
});

Deno.test("checkNick() refuses IRC's special characters with 432", () => {
  for (const c of ["[", "]", "\\", "`", "^", "{", "}", "|"]) {
    const refusal = checkNick(`ana${c}`);
    assert.equal(refusal?.numeric, "432", `ana${c}`);
    assert.equal(refusal?.numeric, NUMERICS.ERR_ERRONEUSNICKNAME);
  }
});

Deno.test("checkNick() refuses long, non-ASCII, digit-only and empty nicks", () => {
  assert.equal(checkNick("A".repeat(33))?.numeric, "432");
  assert.match(checkNick("A".repeat(33))!.text, /32/);
  assert.equal(checkNick("añа")?.numeric, "432"); // Cyrillic а at the end
  assert.equal(checkNick("ana bea")?.numeric, "432");
  assert.equal(checkNick("ana.b")?.numeric, "432");
  assert.equal(checkNick("12345")?.numeric, "432");
  assert.equal(checkNick("")?.numeric, "431");
});

Deno.test("checkChannel() accepts # and 1-32 name characters", () => {
  for (const name of ["#lobby", "#Lobby", "#a", "#" + "x".repeat(32), "#sala_1-b"]) {
    assert.equal(checkChannel(name), null, name);
  }
});

Deno.test("checkChannel() answers 479 for bad names after # and 403 without #", () => {
  for (
    const name of ["#", "#" + "x".repeat(33), "#lob by", "#lob.by", "#ñ", "##x", "#a,b", "#a[b]"]
  ) {
    assert.equal(checkChannel(name)?.numeric, "479", name);
  }
  for (const name of ["lobby", "&lobby", "+lobby", "!lobby", "", "inv@lid"]) {
    assert.equal(checkChannel(name)?.numeric, "403", name);
  }
});

// --- numerics, replies, time, ISUPPORT ---------------------------------------------

Deno.test("NUMERICS holds every numeric a small server sends, each a distinct 3-digit code", () => {
  const codes = Object.values(NUMERICS);
  for (const code of codes) assert.match(code, /^\d{3}$/);
  assert.equal(new Set(codes).size, codes.length);
  const wanted =
    "001 002 003 004 005 221 251 252 253 254 255 263 301 305 306 311 312 313 315 317 318 319 321 322 323 324 329 331 332 333 352 353 366 372 375 376 401 403 404 405 411 412 417 421 422 431 432 433 442 451 461 462 464 465 472 474 479 482 900 901 902 903 904 905 906 907 908"
      .split(" ");
  for (const code of wanted) assert.ok(codes.includes(code as typeof codes[number]), code);
  assert.equal(NUMERICS.RPL_WELCOME, "001");
  assert.equal(NUMERICS.RPL_TOPICWHOTIME, "333");
  assert.equal(NUMERICS.ERR_NICKNAMEINUSE, "433");
  assert.equal(NUMERICS.ERR_BADCHANNAME, "479");
});

Deno.test("numericReply() puts the nick first, * before registration", () => {
  const server = "charla.local";
  assert.equal(
    formatMessage(numericReply({ server, nick: "ana" }, "RPL_WELCOME", ["Welcome to charla, ana"])),
    ":charla.local 001 ana :Welcome to charla, ana",
  );
  assert.equal(
    formatMessage(
      numericReply({ server, nick: "" }, "ERR_NICKNAMEINUSE", [
        "ana",
        "Nickname is already in use",
      ]),
    ),
    ":charla.local 433 * ana :Nickname is already in use",
  );
  assert.equal(
    formatMessage(numericReply({ server, nick: "ana" }, "RPL_ENDOFMOTD")),
    ":charla.local 376 ana",
  );
});

Deno.test("standardReply() writes FAIL/WARN/NOTE with command, code and context", () => {
  assert.equal(
    formatMessage(
      standardReply("charla", {
        type: "FAIL",
        command: "PRIVMSG",
        code: "INVALID_UTF8",
        description: "Message rejected: not UTF-8",
      }),
    ),
    ":charla FAIL PRIVMSG INVALID_UTF8 :Message rejected: not UTF-8",
  );
  assert.equal(
    formatMessage(
      standardReply("charla", {
        type: "WARN",
        command: "*",
        code: "SOMETHING",
        context: ["#lobby", "x"],
        description: "Heads up",
      }),
    ),
    ":charla WARN * SOMETHING #lobby x :Heads up",
  );
});

Deno.test("serverTime() formats UTC with milliseconds, as the time tag wants", () => {
  assert.equal(serverTime(Date.UTC(2026, 10, 28, 12, 0, 0, 0)), "2026-11-28T12:00:00.000Z");
  assert.equal(serverTime(Date.UTC(2026, 0, 2, 3, 4, 5, 6)), "2026-01-02T03:04:05.006Z");
  const line = formatMessage({
    tags: { time: serverTime(Date.UTC(2026, 10, 28, 12)) },
    source: "ana!ana@charla",
    command: "PRIVMSG",
    params: ["#lobby", "hola"],
  });
  assert.equal(line, "@time=2026-11-28T12:00:00.000Z :ana!ana@charla PRIVMSG #lobby hola");
  assert.equal(parseMessage(line).tags.get("time"), "2026-11-28T12:00:00.000Z");
});

Deno.test("isupportLines() declares the base tokens on one line", () => {
  assert.equal(BASE_ISUPPORT.CASEMAPPING, "ascii");
  const lines = isupportLines(BASE_ISUPPORT, { server: "charla", nick: "ana" });
  assert.deepEqual(lines.map(formatMessage), [
    ":charla 005 ana CASEMAPPING=ascii CHANTYPES=# NICKLEN=32 CHANNELLEN=33 :are supported by this server",
  ]);
});

Deno.test("isupportLines() splits at 13 tokens, in order, each line within 15 params", () => {
  const tokens: Record<string, string | true> = {};
  for (let i = 0; i < 30; i++) tokens[`TOKEN${i}`] = i % 2 ? true : String(i);
  const lines = isupportLines(tokens, { server: "charla", nick: "ana" });
  assert.deepEqual(lines.map((l) => l.params.length - 2), [13, 13, 4]);
  const all = lines.flatMap((l) => l.params.slice(1, -1));
  assert.deepEqual(all.slice(0, 3), ["TOKEN0=0", "TOKEN1", "TOKEN2=2"]);
  assert.equal(all.length, 30);
  for (const line of lines) {
    assert.ok(line.params.length <= 15);
    assert.equal(line.params.at(-1), "are supported by this server");
  }
});

Deno.test("isupportLines() splits by bytes so each line fits 512", () => {
  const tokens: Record<string, string> = {};
  for (let i = 0; i < 6; i++) tokens[`LONG${i}`] = "v".repeat(150);
  const lines = isupportLines(tokens, { server: "charla", nick: "ana" });
  assert.ok(lines.length >= 3);
  for (const line of lines) assert.ok(utf8Length(formatMessage(line)) + 2 <= MAX_LINE_BYTES);
  assert.equal(lines.flatMap((l) => l.params.slice(1, -1)).length, 6);
});

Deno.test("isupportLines() escapes values and refuses bad or oversize tokens", () => {
  const [line] = isupportLines({ NETWORK: "Charla Net=1\\x" }, { server: "s", nick: "" });
  assert.equal(
    formatMessage(line),
    ":s 005 * NETWORK=Charla\\x20Net\\x3D1\\x5Cx :are supported by this server",
  );
  assert.throws(() => isupportLines({ "BAD-KEY": true }, { server: "s", nick: "a" }), RangeError);
  assert.throws(
    () => isupportLines({ HUGE: "v".repeat(600) }, { server: "s", nick: "a" }),
    RangeError,
  );
});

Deno.test("parseSource() splits nick!user@host and leaves a server name whole", () => {
  assert.deepEqual(parseSource("ana!ana@127.0.0.1"), {
    nick: "ana",
    user: "ana",
    host: "127.0.0.1",
  });
  assert.deepEqual(parseSource("irc.example"), { nick: "irc.example", user: null, host: null });
  assert.deepEqual(parseSource("ana@host"), { nick: "ana", user: null, host: "host" });
});
