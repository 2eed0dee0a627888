import assert from "node:assert/strict";
import {
  colorDepth,
  highlightMentions,
  mentions,
  nameColour,
  NamePalette,
  PALETTE_16,
  PALETTE_256,
  Styler,
  timestamp,
} from "./style.ts";

const plain = new Styler({ color: false });
const colour = new Styler();

/** Removes SGR sequences: what is left is the text the user reads. */
const strip = (s: string) => s.replaceAll(SGR, "");
// deno-lint-ignore no-control-regex
const SGR = /\x1b\[[0-9;]*m/g;

Deno.test("nameColour() is stable, ignores case, and never red", () => {
  const names = ["ana", "bea", "carlos", "user1", "user2", "x", "Ñandú"];
  for (const colors of [16, 256] as const) {
    for (const name of names) {
      assert.equal(nameColour(name, colors), nameColour(name.toUpperCase(), colors));
      assert.ok(
        !["31", "91", "38;5;196", "38;5;160", "38;5;124"].includes(nameColour(name, colors)),
      );
    }
    assert.ok(new Set(names.map((n) => nameColour(n, colors))).size > 3, "names spread");
  }
  assert.match(nameColour("ana"), /^\d+$/);
  assert.match(nameColour("ana", 256), /^38;5;\d+$/);
});

/** The sRGB colour of an xterm-256 cube index. */
function cubeRgb(index: number): [number, number, number] {
  const levels = [0, 95, 135, 175, 215, 255];
  const i = index - 16;
  return [levels[Math.floor(i / 36)], levels[Math.floor(i / 6) % 6], levels[i % 6]];
}

function luminance([r, g, b]: number[]): number {
  const lin = (c: number) => (c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

function hue([r, g, b]: number[]): number {
  const max = Math.max(r, g, b), min = Math.min(r, g, b), d = max - min;
  const h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
  return (h * 60 + 360) % 360;
}

function lab(rgb: number[]): number[] {
  const [r, g, b] = rgb.map((c) =>
    (c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  );
  const f = (t: number) => t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116;
  const x = f((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047);
  const y = f(0.2126 * r + 0.7152 * g + 0.0722 * b);
  const z = f((0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883);
  return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
}

Deno.test("PALETTE_256 reads on black and on white, has no red or grey, and no near twins", () => {
  assert.equal(new Set(PALETTE_256).size, PALETTE_256.length);
  for (const index of PALETTE_256) {
    assert.ok(index >= 16 && index <= 231, `${index} is in the colour cube`);
    const rgb = cubeRgb(index);
    const l = luminance(rgb);
    // WCAG contrast ratios against white and against black: 3:1 at least.
    assert.ok(1.05 / (l + 0.05) >= 3, `${index} on white`);
    assert.ok((l + 0.05) / 0.05 >= 3, `${index} on black`);
    const h = hue(rgb);
    assert.ok(h >= 25 && h <= 320, `${index} is not red (hue ${h})`);
    assert.ok(Math.max(...rgb) - Math.min(...rgb) >= 80, `${index} is not grey`);
  }
  for (const a of PALETTE_256) {
    for (const b of PALETTE_256) {
      if (a === b) continue;
      const [la, lb] = [lab(cubeRgb(a)), lab(cubeRgb(b))];
      assert.ok(Math.hypot(la[0] - lb[0], la[1] - lb[1], la[2] - lb[2]) >= 18, `${a} and ${b}`);
    }
  }
  assert.ok(!PALETTE_16.includes(31) && !PALETTE_16.includes(91), "16 colours: no red");
});

Deno.test("colorDepth() reads TERM and COLORTERM", () => {
  const cases: [Record<string, string>, 16 | 256][] = [
    [{ TERM: "xterm-256color" }, 256],
    [{ TERM: "screen-256color" }, 256],
    [{ TERM: "tmux-256color" }, 256],
    [{ TERM: "xterm-direct" }, 256],
    [{ TERM: "xterm", COLORTERM: "truecolor" }, 256],
    [{ TERM: "xterm", COLORTERM: "24bit" }, 256],
    [{ TERM: "xterm" }, 16],
    [{ TERM: "linux" }, 16],
    [{ TERM: "vt100", COLORTERM: "yes" }, 16],
    [{}, 16],
  ];
  for (const [env, depth] of cases) assert.equal(colorDepth(env), depth, JSON.stringify(env));
});

/** Chat-like names from a fixed seed, so every run checks the same sets. */
function* nameSets(size: number, count: number): Generator<string[]> {
  let seed = 12345;
  const next = () => (seed = Math.imul(seed, 1103515245) + 12345 >>> 0) / 2 ** 32;
  const stems = ["ana", "bea", "carlos", "dani", "eva", "fer", "gus", "user", "x", "Zoe", "mar"];
  for (let i = 0; i < count; i++) {
    const names = new Set<string>();
    while (names.size < size) {
      names.add(`${stems[Math.floor(next() * stems.length)]}${Math.floor(next() * 1000)}`);
    }
    yield [...names];
  }
}

/**
 * The collision rate of a room: the share of the people present whose colour
 * someone else present already has (0 when all differ; 1 - palette/people at best
 * when there are more people than colours).
 */
function collisionRate(colours: string[]): number {
  return 1 - new Set(colours).size / colours.length;
}

Deno.test("NamePalette: 3, 10 and 30 people present share colours only past the palette's size", () => {
  for (const colors of [16, 256] as const) {
    const size = colors === 256 ? PALETTE_256.length : PALETTE_16.length;
    for (const people of [3, 10, 30]) {
      const best = 1 - Math.min(people, size) / people;
      let hashRate = 0, trials = 0;
      for (const names of nameSets(people, 200)) {
        const palette = new NamePalette({ colors });
        // As few colours shared as can be: every colour used before any is used twice.
        assert.equal(collisionRate(names.map((name) => palette.colour(name))), best, `${names}`);
        hashRate += collisionRate(names.map((name) => nameColour(name, colors)));
        trials++;
      }
      // Colours by hash alone, for comparison: people who would have looked alike.
      assert.ok(best < hashRate / trials, `${colors}/${people}: ${best} vs ${hashRate / trials}`);
    }
  }
});

Deno.test("NamePalette keeps a name's colour while it stays, and frees it when it leaves", () => {
  const palette = new NamePalette({ colors: 256 });
  const ana = palette.colour("ana");
  assert.equal(ana, nameColour("ana", 256), "the first to come gets its own hash colour");
  const others = Array.from({ length: 40 }, (_, i) => `user${i}`);
  for (const name of others) palette.join(name);
  for (const name of others) palette.leave(name);
  assert.equal(palette.colour("ANA"), ana, "same name in another case, same colour");
  // Someone whose hash colour ana holds gets another; once ana leaves, the next one gets it.
  const rival = [...nameSets(1, 5000)].map(([n]) => n).find((n) => nameColour(n, 256) === ana)!;
  assert.notEqual(palette.colour(rival), ana);
  palette.leave("ana");
  palette.leave(rival);
  assert.equal(palette.colour(rival), ana);
  // A rename keeps the colour.
  const before = palette.colour(rival);
  palette.rename(rival, "nuevo");
  assert.equal(palette.colour("nuevo"), before);
  assert.deepEqual(palette.present(), ["nuevo"]);
});

Deno.test("NamePalette forgets the name seen least recently past maxNames", () => {
  const palette = new NamePalette({ colors: 16, maxNames: 3 });
  for (const name of ["a", "b", "c"]) palette.join(name);
  palette.colour("a"); // seen again: now the most recent
  palette.join("d");
  assert.deepEqual(palette.present(), ["c", "a", "d"]);
});

Deno.test("Styler follows joins, leaves, renames and member lists into its palette", () => {
  const styler = new Styler({ colors: 256 });
  const who = (id: number, name: string) => ({ id, name });
  const member = (id: number, name: string) => ({ id, name, transport: "line" });
  styler.follow({ type: "welcome", you: who(1, "ana"), server: "charla" });
  styler.follow({
    type: "joined",
    room: "#lobby",
    topic: "",
    count: 6,
    members: [member(2, "bea"), member(3, "carlos")],
  });
  styler.follow({ type: "join", room: "#lobby", who: who(4, "dani") });
  styler.follow({ type: "quit", who: who(3, "carlos"), reason: "too slow" });
  styler.follow({ type: "nick", who: who(2, "beatriz"), from: "bea" });
  styler.follow({ type: "join", room: "#lobby", who: who(5, "eva") });
  styler.follow({ type: "part", room: "#lobby", who: who(5, "eva"), to: "#dev" });
  assert.deepEqual(styler.palette.present(), ["ana", "dani", "beatriz"]);
});

Deno.test("Styler without colour returns every line as it is", () => {
  assert.equal(plain.said("message", "ana", "hola"), "<ana> hola");
  assert.equal(
    plain.said("action", "ana", "saluda", { name: "bea", mine: false }),
    "** ana saluda",
  );
  for (const line of ["* error: x", "* ana joined", "*ana* secreto", "-> *ana* s"]) {
    assert.equal(plain.notice(line), line);
    assert.equal(plain.error(line), line);
    assert.equal(plain.privately(line, "ana"), line);
  }
  assert.equal(plain.sent("hola", "ana"), "<ana> hola");
  assert.equal(plain.sent("/nick bea", "ana"), "/nick bea");
  assert.equal(plain.sent("//etc", "ana"), "<ana> /etc");
  assert.equal(plain.queued("hola", "ana"), "<ana> hola (queued)");
});

Deno.test("Styler colours senders, dims notices and reddens errors, never changing the text", () => {
  const styler = new Styler();
  const ana = () => `\x1b[${styler.palette.colour("ana")}mana\x1b[0m`;
  assert.equal(styler.said("message", "ana", "hola"), `<${ana()}> hola`);
  assert.equal(styler.notice("* ana joined"), "\x1b[2m* ana joined\x1b[0m");
  assert.equal(styler.error("* error: taken"), "\x1b[31m* error: taken\x1b[0m");
  assert.ok(styler.privately("*ana* secreto", "ana").includes(`\x1b[1m${ana()}`));
  assert.equal(strip(styler.privately("-> *ana* y", "ana")), "-> *ana* y");
  assert.equal(strip(styler.said("action", "ana", "saluda")), "** ana saluda");
  assert.equal(strip(colour.sent("hola", "ana")), "<ana> hola");
  assert.equal(strip(colour.queued("/nick x", "ana")), "/nick x (queued)");
});

Deno.test("mentions() finds a name as a whole word, in any case", () => {
  assert.equal(mentions("ana", "ana"), true);
  assert.equal(mentions("hola Ana!", "ana"), true);
  assert.equal(mentions("@ANA: mira", "ana"), true);
  assert.equal(mentions("¿ana?", "ana"), true);
  assert.equal(mentions("una banana", "ana"), false);
  assert.equal(mentions("anabel", "ana"), false);
  assert.equal(mentions("ana_b y ana-b", "ana"), false);
  assert.equal(mentions("mañana", "ana"), false, "letters beyond ASCII join a word too");
  assert.equal(mentions("hi a-b", "a-b"), true);
  assert.equal(mentions("hi axb", "a.b"), false, "a name is text, not a pattern");
  assert.equal(mentions("anything", ""), false);
});

Deno.test("Styler highlights mentions of you in what others say, and nowhere else", () => {
  const styler = new Styler();
  const hi = (word: string) => `\x1b[7m${word}\x1b[27m`;
  const bea = { name: "ana", mine: false };
  assert.ok(
    styler.said("message", "bea", "hola Ana, y ana", bea).endsWith(
      `hola ${hi("Ana")}, y ${hi("ana")}`,
    ),
  );
  // Your own lines are bold, not highlighted; a name inside a word is no mention.
  assert.ok(
    !styler.said("message", "ana", "soy ana", { name: "ana", mine: true }).includes("\x1b[7m"),
  );
  assert.equal(
    styler.said("message", "bea", "banana", bea),
    styler.said("message", "bea", "banana"),
  );
  assert.equal(highlightMentions("nada", "ana"), "nada");
});

Deno.test("timestamp() writes HH:MM in local time, dim with colour", () => {
  assert.equal(timestamp(new Date(2026, 0, 1, 0, 0), false), "00:00 ");
  assert.equal(timestamp(new Date(2026, 0, 1, 23, 59, 59, 999), false), "23:59 ");
  assert.equal(timestamp(new Date(2026, 0, 1, 7, 3)), "\x1b[2m07:03\x1b[0m ");
  assert.equal(strip(timestamp(new Date(2026, 0, 1, 7, 3))), "07:03 ");
});
