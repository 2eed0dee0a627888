import assert from "node:assert/strict";
import { TelnetFilter } from "./telnet.ts";

/** Runs chunks through one filter; returns the data kept and all replies. */
function run(...chunks: number[][]): { data: number[]; reply: number[] } {
  const filter = new TelnetFilter();
  const data: number[] = [];
  const reply: number[] = [];
  for (const bytes of chunks) {
    const result = filter.strip(new Uint8Array(bytes));
    data.push(...result.data);
    reply.push(...(result.reply ?? []));
  }
  return { data, reply };
}

const text = (s: string) => [...new TextEncoder().encode(s)];

Deno.test("TelnetFilter passes text without commands unchanged", () => {
  assert.deepEqual(run(text("hola ñ 你好\r\n")), { data: text("hola ñ 你好\r\n"), reply: [] });
});

Deno.test("TelnetFilter drops Ctrl-C's IP and confirms its TIMING-MARK", () => {
  assert.deepEqual(run([...text("a"), 0xff, 0xf4, 0xff, 0xfd, 0x06, ...text("b\r\n")]), {
    data: text("ab\r\n"),
    reply: [0xff, 0xfb, 0x06],
  });
});

Deno.test("TelnetFilter refuses other options: DO gets WONT, WILL gets DONT", () => {
  // DO ECHO, WILL NAWS, WONT x and DONT x need no answer.
  const { data, reply } = run([
    0xff,
    0xfd,
    0x01,
    0xff,
    0xfb,
    0x1f,
    0xff,
    0xfc,
    0x03,
    0xff,
    0xfe,
    0x05,
  ]);
  assert.deepEqual(data, []);
  assert.deepEqual(reply, [0xff, 0xfc, 0x01, 0xff, 0xfe, 0x1f]);
});

Deno.test("TelnetFilter handles a command split across chunks", () => {
  const bytes = [...text("x"), 0xff, 0xfd, 0x06, ...text("y")];
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(run(bytes.slice(0, cut), bytes.slice(cut)), {
      data: text("xy"),
      reply: [0xff, 0xfb, 0x06],
    }, `cut at ${cut}`);
  }
});

Deno.test("TelnetFilter skips a whole subnegotiation and keeps IAC IAC as 0xFF", () => {
  const sub = [0xff, 0xfa, 0x1f, 0x00, 0x50, 0x0a, 0xff, 0xff, 0x18, 0xff, 0xf0];
  assert.deepEqual(run([...text("a"), ...sub, ...text("b"), 0xff, 0xff]).data, [
    ...text("ab"),
    0xff,
  ]);
});

Deno.test("TelnetFilter keeps 0xFF followed by a byte that is no command", () => {
  assert.deepEqual(run([0x61, 0xff, 0x41, 0x0a]).data, [0x61, 0xff, 0x41, 0x0a]);
  assert.deepEqual(run([0x61, 0xff], [0x0a]).data, [0x61, 0xff, 0x0a]);
});

Deno.test("TelnetFilter cuts a subnegotiation that never ends, reports it, and keeps what follows", () => {
  const filter = new TelnetFilter();
  const body = new Array(300).fill(0x78); // "x" * 300, and no IAC SE
  const first = filter.strip(new Uint8Array([0xff, 0xfa, ...body.slice(0, 100)]));
  assert.deepEqual([...first.data], []);
  assert.equal(filter.overlong, 0);
  const second = filter.strip(new Uint8Array([...body.slice(100), ...text("hola\n")]));
  assert.equal(filter.overlong, 256);
  assert.deepEqual([...second.data], [...body.slice(256), ...text("hola\n")]);
  assert.equal(filter.pending, false);
});

Deno.test("TelnetFilter still skips a subnegotiation within the bound, IAC IAC inside included", () => {
  assert.deepEqual(
    run([0xff, 0xfa, 0x1f, 0x00, 0xff, 0xff, 0x00, 0x18, 0xff, 0xf0, ...text("ok\n")]),
    { data: text("ok\n"), reply: [] },
  );
});
