import assert from "node:assert/strict";
import { ByteBuilder, sanitize, sanitizeText } from "./text.ts";

const decoder = new TextDecoder();
const show = (bytes: number[]) => decoder.decode(sanitize(new Uint8Array(bytes)));

Deno.test("sanitize() keeps printable ASCII, short runs of blanks and valid UTF-8 unchanged", () => {
  const text = "hola  mundo ñandú 你好 😀 é\u00a0\u3000x   y";
  assert.equal(decoder.decode(sanitize(new TextEncoder().encode(text))), text);
});

Deno.test("sanitize() turns TAB into a space and keeps three blanks of a longer run", () => {
  const bytes = (s: string) => [...new TextEncoder().encode(s)];
  assert.equal(show(bytes("a\tb")), "a b");
  assert.equal(show(bytes("a" + " ".repeat(70) + "<server> hola")), "a   <server> hola");
  assert.equal(show(bytes("a \t \t \tb")), "a   b");
  // Unicode blanks count too, and stay what they were within the three.
  assert.equal(
    show(bytes("a\u00a0\u2003\u3000\u2800\u3164\uffa0\u115f\u1160b")),
    "a\u00a0\u2003\u3000b",
  );
  // A run ends at anything that is not blank, a control shown in caret notation included.
  assert.equal(show(bytes("a    \x07    b")), "a   ^G   b");
  // Zero-width characters are not blanks: they take no column to pad with.
  assert.equal(show(bytes("a\u200b\u200b\u200b\u200bb")), "a\u200b\u200b\u200b\u200bb");
});

Deno.test("sanitize() shows C0 controls and DEL in caret notation", () => {
  assert.equal(show([0x1b, 0x5b, 0x32, 0x4a]), "^[[2J");
  assert.equal(show([0x00, 0x07, 0x08, 0x0d, 0x0a, 0x7f]), "^@^G^H^M^J^?");
});

Deno.test("sanitize() replaces C1 controls with U+FFFD", () => {
  // U+009B is the one-byte CSI some terminals obey; U+00A0 is a printable space.
  assert.equal(show([0xc2, 0x9b, 0x41, 0xc2, 0x80, 0xc2, 0xa0]), "\uFFFDA\uFFFD\u00a0");
});

Deno.test("sanitize() replaces invalid UTF-8 exactly as TextDecoder does", () => {
  const cases = [
    [0xff],
    [0xc3],
    [0xc3, 0x41],
    [0xe4, 0xbd],
    [0xe4, 0xbd, 0x41],
    [0xc0, 0xaf], // overlong "/"
    [0xe0, 0x80, 0xaf], // overlong
    [0xed, 0xa0, 0x80], // surrogate
    [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    [0xf0, 0x9f, 0x98], // truncated emoji
    [0x80, 0xbf],
  ];
  for (const bytes of cases) {
    assert.equal(show(bytes), decoder.decode(new Uint8Array(bytes)), `bytes ${bytes}`);
  }
});

Deno.test("sanitize() agrees with TextDecoder on random bytes, controls aside", () => {
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let round = 0; round < 2000; round++) {
    // Bytes from 0x20 up, biased to the multi-byte range, so controls stay out.
    const bytes = Array.from({ length: 1 + Math.floor(random() * 12) }, () => {
      const r = random();
      return r < 0.3 ? 0x20 + Math.floor(random() * 0x5f) : 0x80 + Math.floor(random() * 0x80);
    });
    const expected = decoder.decode(new Uint8Array(bytes)).replace(/[\x80-\x9f]/g, "\uFFFD");
    assert.equal(show(bytes), expected, `bytes ${bytes.map((b) => b.toString(16))}`);
  }
});

Deno.test("sanitizeText() neutralises the same characters as sanitize()", () => {
  const text = "a\x1b[31mb\x07\x7f\u0085ñ\t" + " \t\u00a0\u3000\u2800 " + "x";
  const viaBytes = decoder.decode(sanitize(new TextEncoder().encode(text)));
  assert.equal(sanitizeText(text), viaBytes);
  assert.equal(sanitizeText(text), "a^[[31mb^G^?\uFFFDñ   x");
});

Deno.test("ByteBuilder grows as needed and take() returns an independent copy", () => {
  const b = new ByteBuilder(2);
  b.appendText("ab");
  b.appendByte(0x63);
  b.append(new Uint8Array([0x64, 0x65, 0x66]), 1, 3);
  const first = b.take();
  b.appendText("zz");
  assert.equal(decoder.decode(first), "abcef");
  assert.equal(decoder.decode(b.take()), "zz");
});
