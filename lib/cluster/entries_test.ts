import assert from "node:assert/strict";
import { SaidBatch } from "../core/peer.ts";
import {
  countLines,
  fillBatch,
  joinBatch,
  lineOf,
  linesHeader,
  missedBefore,
  parseJson,
  parseLinesHeader,
  parsePerson,
} from "./entries.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function batchOf(...lines: string[]): SaidBatch {
  const batch = new SaidBatch();
  for (const line of lines) {
    batch.text.appendText(line);
    batch.endLine();
  }
  return batch;
}

Deno.test("joinBatch and fillBatch round-trip a batch, empty lines and multi-byte text included", () => {
  const lines = ["hola", "", "你好 👋🏽", "x".repeat(70_000), "fin"];
  const body = joinBatch(batchOf(...lines));
  assert.equal(countLines(body), lines.length);
  const back = new SaidBatch();
  back.text.appendText("left over");
  back.endLine();
  fillBatch(back, body);
  assert.equal(back.count, lines.length);
  for (let i = 0; i < lines.length; i++) {
    assert.equal(decoder.decode(back.text.bytes.subarray(back.start(i), back.ends[i])), lines[i]);
  }
});

Deno.test("fillBatch makes control characters safe, whoever wrote the entry", () => {
  const batch = new SaidBatch();
  const invalid = Uint8Array.of(0xff);
  fillBatch(
    batch,
    Uint8Array.from([...encoder.encode("a\x07b\r\x1b]0;owned\x07\nbad "), ...invalid]),
  );
  assert.equal(batch.count, 2);
  const [first, second] = [0, 1].map((i) =>
    decoder.decode(batch.text.bytes.subarray(batch.start(i), batch.ends[i]))
  );
  assert.equal(first, "a^Gb^M^[]0;owned^G");
  assert.equal(second, "bad \ufffd");
});

Deno.test("parseLinesHeader refuses headers this version does not write", () => {
  assert.equal(parseLinesHeader(encoder.encode("m 1 2 node")), null);
  assert.equal(parseLinesHeader(encoder.encode("z 1 2 node ana")), null);
  assert.equal(parseLinesHeader(encoder.encode("m x 2 node ana")), null);
  assert.equal(parseLinesHeader(encoder.encode("m 1 2 node ana extra")), null);
  const header = linesHeader("notice", 5, 1, "a.b:1", "server");
  assert.deepEqual(parseLinesHeader(encoder.encode(header)), {
    kind: "notice",
    time: 5,
    id: 1,
    node: "a.b:1",
    name: "server",
  });
});

Deno.test("missedBefore counts exactly the lines trimmed between two entries", () => {
  // Entries of 3, 1 and 4 lines end at lines 3, 4 and 8: nothing missed in order.
  let seen = 0;
  for (const [last, count] of [[3, 3], [4, 1], [8, 4]]) {
    assert.equal(missedBefore(seen, last, count), 0);
    seen = last;
  }
  // Lines 9 to 99 were trimmed; the next entry holds 100 and 101.
  assert.equal(missedBefore(seen, 101, 2), 91);
  // A join notice between lines carries the line count it follows.
  assert.equal(missedBefore(101, 101, 0), 0);
  assert.equal(missedBefore(101, 150, 0), 49);
  assert.equal(lineOf("150-3"), 150);
});

Deno.test("parsePerson takes Lua's {} for an empty list and refuses damaged records", () => {
  const record = {
    id: 7,
    name: "ana",
    node: "a",
    transport: "line",
    since: 1,
    away: null,
    rooms: {},
  };
  assert.deepEqual(parsePerson(record), { ...record, rooms: [] });
  assert.deepEqual(parsePerson({ ...record, rooms: ["#a"], key: "ana" })?.rooms, ["#a"]);
  assert.equal(parsePerson({ ...record, id: "7" }), null);
  assert.equal(parsePerson({ ...record, id: 0 }), null);
  assert.equal(parsePerson({ ...record, rooms: ["lobby"] }), null);
  assert.equal(parsePerson({ ...record, away: 3 }), null);
  assert.equal(parsePerson(null), null);
});

Deno.test("parseJson returns null for what is not a typed entry", () => {
  assert.equal(parseJson(encoder.encode("{")), null);
  assert.equal(parseJson(encoder.encode("[1]")), null);
  assert.equal(parseJson(encoder.encode('{"type":"x"}')), null);
  assert.deepEqual(parseJson(encoder.encode('{"type":"x","node":"a"}')), { type: "x", node: "a" });
});
