import assert from "node:assert/strict";
import { DEFAULT_MAX_LINE, LineDecoder, type LineSink } from "./frame.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A sink that records lines as strings and over-long lines as a marker. */
function recorder(): LineSink & { out: string[] } {
  const out: string[] = [];
  return {
    out,
    line: (b, s, e) => out.push(decoder.decode(b.subarray(s, e))),
    overlong: () => out.push("<overlong>"),
  };
}

/** Feeds `bytes` cut at the given offsets, then ends the input. */
function feed(bytes: Uint8Array, cuts: number[], maxLine?: number): string[] {
  const d = new LineDecoder(maxLine === undefined ? {} : { maxLine });
  const sink = recorder();
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    d.push(bytes.slice(from, cut), sink);
    from = cut;
  }
  d.end(sink);
  return sink.out;
}

Deno.test("LineDecoder splits lines on LF and strips one CR before it", () => {
  assert.deepEqual(feed(encoder.encode("a\nb\r\nc\r\r\n\n"), []), ["a", "b", "c\r", ""]);
});

Deno.test("LineDecoder delivers a final line without LF at the end", () => {
  assert.deepEqual(feed(encoder.encode("a\nlast"), [3]), ["a", "last"]);
  assert.deepEqual(feed(encoder.encode("a\n"), []), ["a"]);
});

Deno.test("LineDecoder keeps a multi-byte character split across chunks", () => {
  const bytes = encoder.encode("ñ你好😀\n");
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(feed(bytes, [cut]), ["ñ你好😀"], `cut at ${cut}`);
  }
  // One byte per chunk.
  assert.deepEqual(feed(bytes, [...bytes.keys()].slice(1)), ["ñ你好😀"]);
});

Deno.test("LineDecoder splits a CRLF across chunks", () => {
  const bytes = encoder.encode("hola\r\nadiós\r\n");
  assert.deepEqual(feed(bytes, [5]), ["hola", "adiós"]);
  assert.deepEqual(feed(bytes, [4, 5]), ["hola", "adiós"]);
});

Deno.test("LineDecoder gives the same lines for every way of cutting the input", () => {
  const text = "uno\r\ndos\n\nñandú 你好\r\ntres sin fin";
  const bytes = encoder.encode(text);
  const expected = ["uno", "dos", "", "ñandú 你好", "tres sin fin"];
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let round = 0; round < 500; round++) {
    const cuts = [...bytes.keys()].filter(() => random() < 0.3).filter((c) => c > 0);
    assert.deepEqual(feed(bytes, cuts), expected, `cuts ${cuts}`);
  }
});

Deno.test("LineDecoder accepts a line of exactly maxLine bytes, with or without CR", () => {
  const line = "x".repeat(8);
  assert.deepEqual(feed(encoder.encode(`${line}\n`), [], 8), [line]);
  assert.deepEqual(feed(encoder.encode(`${line}\r\n`), [], 8), [line]);
  // The same, with the CR and LF in later chunks than the text.
  assert.deepEqual(feed(encoder.encode(`${line}\r\n`), [8, 9], 8), [line]);
  assert.deepEqual(feed(encoder.encode(`${line}\r\n`), [4, 9], 8), [line]);
});

Deno.test("LineDecoder drops a line one byte over maxLine and goes on", () => {
  const over = "y".repeat(9);
  for (const cuts of [[], [3], [8], [9], [3, 6, 9]]) {
    assert.deepEqual(feed(encoder.encode(`a\n${over}\nb\n`), cuts.map((c) => c + 2), 8), [
      "a",
      "<overlong>",
      "b",
    ], `cuts ${cuts}`);
  }
  // A CR that is not before LF counts as content.
  assert.deepEqual(feed(encoder.encode("12345678\rz\n"), [], 8), ["<overlong>"]);
  // An over-long final line without LF.
  assert.deepEqual(feed(encoder.encode("ok\n123456789"), [], 8), ["ok", "<overlong>"]);
});

Deno.test("LineDecoder reports a streaming over-long line once and never buffers it", () => {
  const d = new LineDecoder({ maxLine: 1024 });
  const sink = recorder();
  const chunk = new Uint8Array(4096).fill(0x41);
  for (let i = 0; i < 1000; i++) {
    d.push(chunk, sink);
    assert.ok(d.buffered <= 1025, `buffered ${d.buffered}`);
  }
  d.push(encoder.encode("tail\nnext\n"), sink);
  assert.deepEqual(sink.out, ["<overlong>", "next"]);
});

Deno.test("LineDecoder keeps lines whole when one arrives in many small chunks", () => {
  const line = "z".repeat(DEFAULT_MAX_LINE);
  const bytes = encoder.encode(`${line}\n`);
  const cuts = [];
  for (let c = 1; c < bytes.length; c += 777) cuts.push(c);
  assert.deepEqual(feed(bytes, cuts), [line]);
});

Deno.test("LineDecoder passes invalid UTF-8 through as bytes", () => {
  const d = new LineDecoder();
  const got: number[][] = [];
  d.push(new Uint8Array([0xff, 0xc3, 0x0a, 0x80]), {
    line: (b, s, e) => got.push([...b.subarray(s, e)]),
    overlong: () => assert.fail("not over-long"),
  });
  d.end({ line: (b, s, e) => got.push([...b.subarray(s, e)]), overlong: () => {} });
  assert.deepEqual(got, [[0xff, 0xc3], [0x80]]);
});

Deno.test("LineDecoder refuses a maxLine that is not a positive integer", () => {
  assert.throws(() => new LineDecoder({ maxLine: 0 }), RangeError);
  assert.throws(() => new LineDecoder({ maxLine: 1.5 }), RangeError);
});
