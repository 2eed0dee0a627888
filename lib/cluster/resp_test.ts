import assert from "node:assert/strict";
import {
  type Arg,
  CommandEncoder,
  decodeReply,
  encodeCommand,
  MAX_DEPTH,
  PushReply,
  RedisError,
  RedisProtocolError,
  type Reply,
  ReplyParser,
} from "./resp.ts";

const encoder = new TextEncoder();
const bytes = (s: string) => encoder.encode(s);

/** Feeds `chunks` to a new parser; returns the replies. */
function parse(chunks: Uint8Array[], maxReply?: number): Reply[] {
  const parser = new ReplyParser({ maxReply });
  const replies: Reply[] = [];
  for (const chunk of chunks) parser.push(chunk, (reply) => replies.push(reply));
  assert.ok(parser.idle, "the parser holds a partial reply after the last chunk");
  return replies;
}

/** Splits `data` at the given positions (ascending). */
function splitAt(data: Uint8Array, ...cuts: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const cut of [...cuts, data.length]) {
    // A copy per chunk, as a socket would deliver: no chunk shares memory.
    chunks.push(data.slice(from, cut));
    from = cut;
  }
  return chunks;
}

// One reply of every kind, nested, with lengths of one, two and more digits.
const COMPOSITE_PARTS = [
  "*3\r\n$5\r\nhello\r\n:-42\r\n*2\r\n+OK\r\n$-1\r\n",
  "-ERR unknown command 'FOO'\r\n",
  "*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$4\r\ntext\r\n$13\r\nhola, ¿qué?\r\n*-1\r\n",
  "%2\r\n+a\r\n:1\r\n$1\r\nb\r\n~2\r\n#t\r\n#f\r\n",
  "_\r\n,3.25\r\n,-inf\r\n(12345678901234567890\r\n:9007199254740993\r\n",
  "=8\r\ntxt:hola\r\n!9\r\nERR blob!\r\n",
  ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n",
  "|1\r\n+ttl\r\n:3\r\n:7\r\n",
  "$0\r\n\r\n*0\r\n+\r\n",
];
const COMPOSITE = COMPOSITE_PARTS.join("");

/** What COMPOSITE parses to, written out by hand. */
function compositeExpected(): Reply[] {
  return [
    [bytes("hello"), -42, ["OK", null]],
    new RedisError("ERR unknown command 'FOO'"),
    [[bytes("1-0"), [bytes("text"), bytes("hola, ¿qué?")]], null],
    new Map<Reply, Reply>([["a", 1], [bytes("b"), new Set([true, false])]]),
    null,
    3.25,
    -Infinity,
    12345678901234567890n,
    9007199254740993n,
    bytes("hola"),
    new RedisError("ERR blob!"),
    new PushReply([bytes("invalidate"), [bytes("k")]]),
    7, // the attribute before it is dropped
    new Uint8Array(0),
    [],
    "",
  ];
}

Deno.test("ReplyParser reads a reply of every RESP2 and RESP3 type", () => {
  const replies = parse([bytes(COMPOSITE)]);
  assert.deepEqual(replies, compositeExpected());
  const error = replies[1] as RedisError;
  assert.ok(error instanceof RedisError);
  assert.equal(error.code, "ERR");
  assert.equal(error.message, "ERR unknown command 'FOO'");
});

Deno.test("ReplyParser gives the same replies at every split position of a composite reply", () => {
  const data = bytes(COMPOSITE);
  const expected = compositeExpected();
  for (let cut = 0; cut <= data.length; cut++) {
    assert.deepEqual(parse(splitAt(data, cut)), expected, `split at ${cut}`);
  }
});

Deno.test("ReplyParser gives the same replies at every pair of split positions", () => {
  // Two cuts reach the cases one cannot: a header cut twice, a CRLF cut after a
  // bulk that already spanned chunks.
  const data = bytes(COMPOSITE_PARTS.slice(0, 4).join(""));
  const expected = compositeExpected().slice(0, 4);
  for (let a = 1; a < data.length; a++) {
    for (let b = a; b < data.length; b++) {
      assert.deepEqual(parse(splitAt(data, a, b)), expected, `split at ${a} and ${b}`);
    }
  }
});

Deno.test("ReplyParser reads a composite reply fed one byte at a time", () => {
  const data = bytes(COMPOSITE);
  const chunks = Array.from(data, (byte) => Uint8Array.of(byte));
  assert.deepEqual(parse(chunks), compositeExpected());
});

Deno.test("ReplyParser keeps nothing of the caller's chunk", () => {
  const chunk = bytes("$4\r\nabcd\r\n+hi\r\n$7\r\nspan");
  const parser = new ReplyParser();
  const replies: Reply[] = [];
  parser.push(chunk, (reply) => replies.push(reply));
  chunk.fill(0x21); // the caller reuses its read buffer
  parser.push(bytes("ned\r\n"), (reply) => replies.push(reply));
  assert.deepEqual(replies, [bytes("abcd"), "hi", bytes("spanned")]);
});

Deno.test("ReplyParser reads the three nulls of RESP2 and RESP3", () => {
  assert.deepEqual(parse([bytes("$-1\r\n*-1\r\n_\r\n*1\r\n$-1\r\n")]), [null, null, null, [null]]);
});

Deno.test("ReplyParser keeps integers exact: numbers up to 2^53, bigints past it", () => {
  const replies = parse([
    bytes(":9007199254740991\r\n:-9007199254740991\r\n:9223372036854775807\r\n:0\r\n:+5\r\n"),
  ]);
  assert.deepEqual(replies, [
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    9223372036854775807n,
    0,
    5,
  ]);
});

Deno.test("ReplyParser reads errors at the top and inside arrays", () => {
  const [top, nested] = parse([
    bytes("-WRONGTYPE Operation against a key\r\n*2\r\n+OK\r\n-ERR no\r\n"),
  ]);
  assert.ok(top instanceof RedisError);
  assert.equal(top.code, "WRONGTYPE");
  assert.ok(Array.isArray(nested) && nested[1] instanceof RedisError);
  assert.equal((nested[1] as RedisError).message, "ERR no");
});

Deno.test("ReplyParser reads a big bulk string fed in small chunks, bytes intact", () => {
  const size = 1024 * 1024 + 3;
  const body = new Uint8Array(size);
  for (let i = 0; i < size; i++) body[i] = (i * 7919) & 0xff; // every byte value, CR and LF too
  const header = bytes(`$${size}\r\n`);
  const data = new Uint8Array(header.length + size + 6);
  data.set(header);
  data.set(body, header.length);
  data.set(bytes("\r\n:1\r\n"), header.length + size);
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += 61) chunks.push(data.slice(at, at + 61));
  const replies = parse(chunks);
  assert.equal(replies.length, 2);
  assert.deepEqual(replies[0], body);
  assert.equal(replies[1], 1);
});

Deno.test("ReplyParser reads a 100,000-element array fed in 5-byte chunks", () => {
  // A parser that went back to the start of a reply on each chunk would read
  // this about 100,000 times over.
  const count = 100_000;
  const parts = [`*${count}\r\n`];
  for (let i = 0; i < count; i++) {
    parts.push(i % 2 ? `:${i}\r\n` : `$${String(i).length}\r\n${i}\r\n`);
  }
  const data = bytes(parts.join(""));
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += 5) chunks.push(data.subarray(at, at + 5));
  const [reply] = parse(chunks);
  assert.ok(Array.isArray(reply));
  assert.equal(reply.length, count);
  assert.deepEqual(reply[99_998], bytes("99998"));
  assert.equal(reply[99_999], 99_999);
});

Deno.test("ReplyParser reads a long simple string fed in 3-byte chunks", () => {
  const long = "x".repeat(300_000);
  const data = bytes(`+${long}\r\n`);
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += 3) chunks.push(data.subarray(at, at + 3));
  assert.deepEqual(parse(chunks), [long]);
});

Deno.test("ReplyParser reads deep nesting up to its limit", () => {
  const data = bytes("*1\r\n".repeat(MAX_DEPTH) + ":1\r\n");
  let reply = parse([data])[0];
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    assert.ok(Array.isArray(reply) && reply.length === 1, `depth ${depth}`);
    reply = reply[0];
  }
  assert.equal(reply, 1);
});

/** Asserts that feeding `chunks` throws a protocol error matching `pattern`. */
function assertProtocolError(chunks: Uint8Array[], pattern: RegExp, maxReply?: number): void {
  const parser = new ReplyParser({ maxReply });
  const replies: Reply[] = [];
  assert.throws(() => {
    for (const chunk of chunks) parser.push(chunk, (reply) => replies.push(reply));
  }, (error: Error) => error instanceof RedisProtocolError && pattern.test(error.message));
  // And refuses anything after it, even a well-formed reply.
  assert.throws(() => parser.push(bytes("+OK\r\n"), () => {}), RedisProtocolError);
}

Deno.test("ReplyParser refuses a bulk string over maxReply from its header alone", () => {
  // The body never comes: the header is enough to refuse, before any allocation.
  assertProtocolError([bytes("$1025\r\n")], /longer than the limit of 1024 bytes/, 1024);
  assertProtocolError([bytes("$4000000000\r\n")], /longer than the limit/);
  // Exactly at the limit passes: header (7) + 1,015 bytes of body + CRLF (2) = 1,024.
  const body = "y".repeat(1015);
  assert.deepEqual(parse([bytes(`$${body.length}\r\n${body}\r\n`)], 1024), [bytes(body)]);
  assertProtocolError([bytes(`$1016\r\n`)], /longer than the limit/, 1024);
});

Deno.test("ReplyParser refuses an aggregate that grows past maxReply", () => {
  // Announced too big to fit.
  assertProtocolError([bytes("*1000\r\n")], /longer than the limit of 1024/, 1024);
  assertProtocolError([bytes("%200\r\n")], /longer than the limit of 1024/, 1024);
  // Announced small enough, but its elements are big.
  assertProtocolError(
    [bytes("*3\r\n"), bytes(`$600\r\n${"z".repeat(600)}\r\n`), bytes(`$600\r\n`)],
    /longer than the limit of 1024/,
    1024,
  );
  // The limit is per reply: many replies of 600 bytes each are fine.
  const one = `$590\r\n${"z".repeat(590)}\r\n`;
  assert.equal(parse([bytes(one.repeat(10))], 1024).length, 10);
});

Deno.test("ReplyParser refuses a line that grows past maxReply without ending", () => {
  const chunks = Array.from({ length: 20 }, () => bytes("+" + "a".repeat(99)));
  assertProtocolError(chunks, /longer than the limit of 1024/, 1024);
});

Deno.test("ReplyParser refuses bytes that are not RESP", () => {
  assertProtocolError(
    [bytes("HTTP/1.1 400 Bad Request\r\n")],
    /"HTTP\/1.1 400 Bad Request".*Redis/,
  );
  assertProtocolError([bytes("+OK\n")], /LF without CR/);
  assertProtocolError([bytes("\r\n")], /Empty line/);
  assertProtocolError([bytes("$abc\r\n")], /Malformed length in "\$abc"/);
  assertProtocolError([bytes("$-2\r\n")], /Malformed length/);
  assertProtocolError([bytes(":12x\r\n")], /Malformed integer/);
  assertProtocolError([bytes("$3\r\nabcde\r\n")], /Expected CRLF after a bulk string/);
  assertProtocolError([bytes("$3\r\nab"), bytes("cde\r\n")], /Expected CRLF after a bulk string/);
  assertProtocolError([bytes("#x\r\n")], /Malformed boolean/);
  assertProtocolError([bytes(",1.2.3\r\n")], /Malformed double/);
  assertProtocolError([bytes("%-1\r\n")], /Malformed aggregate length/);
  assertProtocolError([bytes("$?\r\n")], /Malformed length/); // streamed strings
  assertProtocolError([bytes("*1\r\n".repeat(MAX_DEPTH + 1))], /nested deeper than 128/);
});

Deno.test("ReplyParser stops after an exception in onReply", () => {
  const parser = new ReplyParser();
  assert.throws(() =>
    parser.push(bytes("+a\r\n+b\r\n"), () => {
      throw new Error("boom");
    }), /boom/);
  assert.throws(() => parser.push(bytes("+OK\r\n"), () => {}), /exception in onReply/);
});

Deno.test("ReplyParser refuses a maxReply it cannot honour", () => {
  assert.throws(() => new ReplyParser({ maxReply: 0 }), RangeError);
  assert.throws(() => new ReplyParser({ maxReply: 1.5 }), RangeError);
});

/** Parses an encoded command back: a command is an array of bulk strings. */
function roundTrip(args: Arg[]): string[] {
  const [reply] = parse([encodeCommand(args)]);
  assert.ok(Array.isArray(reply));
  return reply.map((item) => new TextDecoder().decode(item as Uint8Array));
}

Deno.test("CommandEncoder writes every argument type as a bulk string", () => {
  assert.equal(
    new TextDecoder().decode(encodeCommand(["SET", "k", 12, -3.5, 2n ** 64n])),
    "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$4\r\n-3.5\r\n$20\r\n18446744073709551616\r\n",
  );
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
  const [reply] = parse([encodeCommand(["SET", binary])]);
  assert.deepEqual(reply, [bytes("SET"), binary]);
});

Deno.test("CommandEncoder counts UTF-8 bytes, not characters, whatever the string's length", () => {
  // Lengths around where the header's digits change, in 1-, 2-, 3- and 4-byte characters.
  for (const unit of ["a", "ñ", "你", "👋"]) {
    for (const n of [0, 1, 3, 4, 9, 10, 33, 34, 99, 100, 255, 256, 257, 333, 334, 3333, 70_000]) {
      const value = unit.repeat(n);
      assert.deepEqual(roundTrip(["ECHO", value]), ["ECHO", value], `${n} × ${unit}`);
      // ASCII up to the last character, which is not.
      const tail = "a".repeat(n) + unit;
      assert.deepEqual(roundTrip(["ECHO", tail]), ["ECHO", tail], `${n} × a + ${unit}`);
    }
  }
});

Deno.test("CommandEncoder refuses bad arguments and keeps what it had", () => {
  const commands = new CommandEncoder();
  commands.encode(["PING"]);
  const before = commands.length;
  for (const bad of [NaN, Infinity, null, undefined, {}, true]) {
    assert.throws(() => commands.encode(["SET", "k", bad as unknown as Arg]), TypeError);
    assert.equal(commands.length, before);
  }
  assert.throws(() => commands.encode([]), TypeError);
  assert.deepEqual(parse([commands.take()]), [[bytes("PING")]]);
});

Deno.test("CommandEncoder batches commands and hands each batch out whole", () => {
  const commands = new CommandEncoder();
  for (let i = 0; i < 1000; i++) commands.encode(["INCRBY", `key:${i}`, i]);
  const first = commands.take();
  commands.encode(["PING"]);
  const second = commands.take();
  const replies = parse([first, second]);
  assert.equal(replies.length, 1001);
  assert.deepEqual(replies[999], [bytes("INCRBY"), bytes("key:999"), bytes("999")]);
  assert.deepEqual(replies[1000], [bytes("PING")]);
});

Deno.test("decodeReply turns bytes into text through every aggregate", () => {
  const reply = parse([bytes(COMPOSITE)]);
  const text = decodeReply(reply);
  assert.deepEqual((text as unknown[])[2], [["1-0", ["text", "hola, ¿qué?"]], null]);
  const map = (text as unknown[])[3] as Map<unknown, unknown>;
  assert.deepEqual(map.get("b"), new Set([true, false]));
  assert.deepEqual((text as unknown[])[11], ["invalidate", ["k"]]);
});
