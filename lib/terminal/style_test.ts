import assert from "node:assert/strict";
import { nameColour, Styler } from "./style.ts";

const plain = new Styler({ color: false });
const colour = new Styler();

Deno.test("nameColour() is stable, ignores case, and never red", () => {
  const names = ["ana", "bea", "carlos", "user1", "user2", "x", "Ñandú"];
  for (const name of names) {
    assert.equal(nameColour(name), nameColour(name.toUpperCase()));
    assert.notEqual(nameColour(name), 31);
    assert.notEqual(nameColour(name), 91);
  }
  assert.ok(new Set(names.map(nameColour)).size > 3, "names spread over the palette");
});

Deno.test("Styler without colour returns every line as it is", () => {
  for (const line of ["<ana> hola", "* error: x", "* ana joined", "*ana* secreto", "-> *ana* s"]) {
    assert.equal(plain.received(line), line);
  }
  assert.equal(plain.log("12:00:00 [#1 ana] hola"), "12:00:00 [#1 ana] hola");
  assert.equal(plain.sent("hola", "ana"), "<ana> hola");
  assert.equal(plain.sent("/nick bea", "ana"), "/nick bea");
  assert.equal(plain.sent("//etc", "ana"), "<ana> /etc");
});

/** Removes SGR sequences: what is left is the text the user reads. */
const strip = (s: string) => s.replaceAll(SGR, "");
// deno-lint-ignore no-control-regex
const SGR = /\x1b\[[0-9;]*m/g;

Deno.test("Styler colours senders, dims notices and reddens errors", () => {
  const ana = `\x1b[${nameColour("ana")}mana\x1b[0m`;
  assert.equal(colour.received("<ana> hola"), `<${ana}> hola`);
  assert.equal(colour.received("* ana joined"), "\x1b[2m* ana joined\x1b[0m");
  assert.equal(colour.received("* error: taken"), "\x1b[31m* error: taken\x1b[0m");
  assert.ok(colour.received("*ana* secreto").includes(`\x1b[1m${ana}`));
  const log = colour.log("12:00:00 [#1 ana -> #2 bea] hola");
  assert.ok(log.startsWith("\x1b[2m12:00:00 \x1b[0m[#1 "));
  assert.ok(log.includes(ana) && log.includes(`\x1b[${nameColour("bea")}mbea\x1b[0m`));
  assert.equal(colour.log("12:00:00 ! refused"), "\x1b[2m12:00:00 \x1b[0m\x1b[31m! refused\x1b[0m");
  // The text itself is never changed, only wrapped in colours.
  for (const line of ["<ana> hola", "*ana* x", "-> *bea* y", "* z", "otra cosa"]) {
    assert.equal(strip(colour.received(line)), line);
  }
  for (const line of ["12:00:00 [#1 ana -> server] hola", "12:00:00 * #2 bea left", "x"]) {
    assert.equal(strip(colour.log(line)), line);
  }
  assert.equal(strip(colour.sent("hola", "ana")), "<ana> hola");
});
