import assert from "node:assert/strict";
import { CLOSE_CODES, closeText, lineCommand, parseFrame } from "./web_protocol.ts";

Deno.test("parseFrame() reads every command with exactly its fields", () => {
  const frames: [unknown, unknown][] = [
    [{ type: "say", room: "#a", text: "t", extra: 1 }, { type: "say", room: "#a", text: "t" }],
    [{ type: "action", text: "t" }, { type: "action", text: "t" }],
    [{ type: "msg", to: "ana", text: "t", action: true }, {
      type: "msg",
      to: "ana",
      text: "t",
      action: true,
    }],
    [{ type: "join", room: "#a" }, { type: "join", room: "#a" }],
    [{ type: "part" }, { type: "part" }],
    [{ type: "part", room: "#a", reason: "bye" }, { type: "part", room: "#a", reason: "bye" }],
    [{ type: "nick", name: "ana" }, { type: "nick", name: "ana" }],
    [{ type: "topic", room: "#a" }, { type: "topic", room: "#a" }],
    [{ type: "who" }, { type: "who" }],
    [{ type: "whois", name: "ana" }, { type: "whois", name: "ana" }],
    [{ type: "rooms", room: "#ignored" }, { type: "rooms" }],
    [{ type: "away", text: "lunch" }, { type: "away", text: "lunch" }],
    [{ type: "ignore" }, { type: "ignore" }],
    [{ type: "unignore", name: "bea" }, { type: "unignore", name: "bea" }],
    [{ type: "history", count: 1000 }, { type: "history", count: 1000 }],
    [{ type: "quit", reason: "bye" }, { type: "quit", reason: "bye" }],
    [{ type: "help" }, { type: "help" }],
  ];
  for (const [frame, command] of frames) {
    assert.deepEqual(parseFrame(JSON.stringify(frame)), { kind: "command", command });
  }
  assert.deepEqual(parseFrame('{"type":"pass","password":"x"}'), { kind: "pass", password: "x" });
  assert.deepEqual(parseFrame('{"type":"resume","token":"t"}'), { kind: "resume", token: "t" });
});

Deno.test("parseFrame() names the field that is missing or of the wrong type", () => {
  const problems: [unknown, string][] = [
    [{ type: "say" }, '"say" needs "text" to be a string'],
    [
      { type: "msg", to: "ana", text: "t", action: "yes" },
      '"msg" needs "action" to be true or false',
    ],
    [{ type: "history", count: 0 }, '"history" needs "count" to be a whole number from 1 to 1000'],
    [
      { type: "history", count: 2.5 },
      '"history" needs "count" to be a whole number from 1 to 1000',
    ],
    [{ type: "line", room: "#a" }, '"line" needs "text" to be a string'],
    [{ type: "pass", password: null }, '"pass" needs "password" to be a string'],
    [{ type: 7 }, 'a frame must have a "type", such as "line" or "join"'],
    [null, 'a frame must be one JSON object with a "type"'],
    ["hola", 'a frame must be one JSON object with a "type"'],
  ];
  for (const [frame, text] of problems) {
    assert.deepEqual(parseFrame(JSON.stringify(frame)), { error: "usage", text });
  }
  // Names that objects inherit are not frame types.
  for (const type of ["__proto__", "toString", "constructor", "hasOwnProperty"]) {
    const read = parseFrame(JSON.stringify({ type }));
    assert.ok("error" in read && read.error === "unknown_command", type);
  }
  const cut = parseFrame('{"type":"line","room":"#a","te');
  assert.ok("error" in cut && cut.error === "usage");
});

Deno.test("lineCommand() aims room commands at the room shown, and leaves the rest", () => {
  assert.deepEqual(lineCommand("#a", "/topic nueva"), { type: "topic", text: "nueva", room: "#a" });
  assert.deepEqual(lineCommand("#a", "/topic"), { type: "topic", room: "#a" });
  assert.deepEqual(lineCommand("#a", "/part"), { type: "part", room: "#a" });
  assert.deepEqual(lineCommand("#a", "/history 5"), { type: "history", count: 5, room: "#a" });
  assert.deepEqual(lineCommand("#a", "/who"), { type: "who", room: "#a" });
  assert.deepEqual(lineCommand("#a", "/nick ana"), { type: "nick", name: "ana" });
  assert.deepEqual(lineCommand("#a", "/rooms"), { type: "rooms" });
  assert.deepEqual(lineCommand("#a", "/msg bea hola"), { type: "msg", to: "bea", text: "hola" });
  // Control characters in a command are made safe before it is read, as for nc.
  assert.deepEqual(lineCommand("#a", "/away \x1b[31mrojo"), { type: "away", text: "^[[31mrojo" });
  assert.deepEqual(lineCommand("#a", "/frob"), {
    error: "unknown_command",
    text: 'unknown command "/frob"; /help lists the commands',
  });
  // Plain text is said as it is: the core makes it safe on the hot path.
  assert.deepEqual(lineCommand("#a", " /not a command"), {
    type: "say",
    room: "#a",
    text: " /not a command",
  });
});

Deno.test("closeText() keeps a close reason within 123 bytes, whole characters only", () => {
  const encoder = new TextEncoder();
  assert.equal(closeText("a".repeat(123)), "a".repeat(123));
  assert.equal(closeText("a".repeat(124)), "a".repeat(123));
  const emoji = closeText("👋".repeat(40)); // 4 bytes each
  assert.equal(encoder.encode(emoji).length, 120);
  assert.ok(!/[\ud800-\udbff]$/.test(emoji));
  assert.equal(closeText("a" + "👋".repeat(40)).length, 1 + 30 * 2);
  assert.deepEqual(
    [CLOSE_CODES.quit, CLOSE_CODES.shutdown, CLOSE_CODES.kicked, CLOSE_CODES.banned],
    [1000, 1001, 4001, 4003],
  );
});
