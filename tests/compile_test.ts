/**
 * `deno compile` bakes permissions into a binary, and its user cannot add any:
 * a feature whose permission is missing from deno.json's `compile` task fails
 * in every binary, and nothing else would tell. `deno compile` itself cannot
 * run here (it downloads a runtime), so this reads the task instead.
 */

import assert from "node:assert/strict";

const root = new URL("..", import.meta.url);

/**
 * What each documented feature needs, by program. Paths come from the command
 * line (`--tls-cert`, `--ca`, `--unix`, `--db`), so read and write cannot be
 * scoped to a folder at build time: the binaries get them whole, as `deno run`
 * users are told to pass them.
 */
const NEEDS: { program: "server" | "client"; feature: string; permissions: string[] }[] = [
  // Every server listens and every client connects.
  { program: "server", feature: "TCP", permissions: ["--allow-net"] },
  { program: "client", feature: "TCP", permissions: ["--allow-net"] },
  // Deno.listenTls takes PEM text: the server reads --tls-cert and --tls-key itself.
  { program: "server", feature: "--tls-cert, --tls-key", permissions: ["--allow-read"] },
  // A throwaway certificate is made by running openssl (lib/net/make_cert.ts).
  { program: "server", feature: "--tls-self-signed", permissions: ["--allow-run=openssl"] },
  // The client reads the authority's PEM to pass as caCerts.
  { program: "client", feature: "--ca", permissions: ["--allow-read"] },
  // Deno asks for both to bind or connect a Unix socket; the server also removes a stale one.
  { program: "server", feature: "--unix", permissions: ["--allow-read", "--allow-write"] },
  { program: "client", feature: "--unix", permissions: ["--allow-read", "--allow-write"] },
  // node:sqlite opens the file and writes it and its WAL files beside it.
  { program: "server", feature: "--db (SQLite)", permissions: ["--allow-read", "--allow-write"] },
  // A cluster node is named after its host by default (--node): Deno.hostname().
  { program: "server", feature: "--cluster", permissions: ["--allow-sys=hostname"] },
  // The server reads its password and message of the day; the client its password.
  { program: "server", feature: "--password-file, --motd", permissions: ["--allow-read"] },
  { program: "client", feature: "--password-file", permissions: ["--allow-read"] },
  // 256 colours are chosen from TERM and COLORTERM (style.ts terminalColorDepth()); without
  // these two variables the terminal gets 16. Nothing else of the environment is read.
  { program: "server", feature: "256 colours", permissions: ["--allow-env=TERM,COLORTERM"] },
  { program: "client", feature: "256 colours", permissions: ["--allow-env=TERM,COLORTERM"] },
];

/** The permission flags of each `deno compile` in the task, by program (from --output). */
async function compiledPermissions(): Promise<Map<string, Set<string>>> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const task: string = config.tasks.compile;
  const programs = new Map<string, Set<string>>();
  for (const command of task.split("&&").map((part) => part.trim().split(/\s+/))) {
    assert.deepEqual(command.slice(0, 2), ["deno", "compile"], command.join(" "));
    const script = command.at(-1)!;
    const program = script.replace(/\.ts$/, "");
    programs.set(program, new Set(command.filter((arg) => /^--allow-|^-A$/.test(arg))));
  }
  return programs;
}

Deno.test("deno task compile bakes in the permission every documented feature needs", async () => {
  const compiled = await compiledPermissions();
  assert.deepEqual([...compiled.keys()].sort(), ["client", "server"]);
  for (const { program, feature, permissions } of NEEDS) {
    for (const permission of permissions) {
      assert.ok(
        compiled.get(program)!.has(permission),
        `${program} binary: ${feature} needs ${permission}`,
      );
    }
  }
});

Deno.test("deno task compile bakes in nothing beyond what the features need", async () => {
  for (const [program, permissions] of await compiledPermissions()) {
    const needed = new Set(
      NEEDS.filter((n) => n.program === program).flatMap((n) => n.permissions),
    );
    assert.deepEqual([...permissions].sort(), [...needed].sort(), program);
  }
});

Deno.test("every permission a program's --help asks for is in the table above", async () => {
  for (const program of ["server", "client"] as const) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", `${program}.ts`, "--help"],
      cwd: root,
      stdout: "piped",
    }).output();
    const help = new TextDecoder().decode(output.stdout);
    const asked = [...help.matchAll(/needs ((?:--allow-[\w=,.-]+ ?)+)/g)]
      .flatMap((m) => m[1].trim().split(" "));
    assert.ok(asked.length > 0, `${program} --help names permissions`);
    const table = new Set(NEEDS.filter((n) => n.program === program).flatMap((n) => n.permissions));
    for (const permission of asked) assert.ok(table.has(permission), `${program}: ${permission}`);
  }
});
