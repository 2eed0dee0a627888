/**
 * Files for the store tests: a temporary directory, and what a database file holds.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";

/** A temporary directory (its name starts with `prefix`), removed with everything in it on dispose. */
export function tempDir(prefix: string): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

/** Every line text of `room` in the database file at `path`, in row order. */
export function fileTexts(path: string, room: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    // One row per run of lines said together, the lines joined by newlines.
    return db.prepare("SELECT text FROM runs WHERE room = ? ORDER BY id").all(room)
      .flatMap((row) => new TextDecoder().decode(row.text as Uint8Array).split("\n"));
  } finally {
    db.close();
  }
}

/**
 * Whether this process may write a file it made read-only: true for root (it
 * bypasses file permissions), so a test of a read-only store must run its
 * server or store in a process without that privilege.
 */
export function bypassesPermissions(dir: string): boolean {
  const probe = `${dir}/probe`;
  Deno.writeTextFileSync(probe, "");
  Deno.chmodSync(probe, 0o444);
  try {
    Deno.openSync(probe, { write: true }).close();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied) return false;
    throw e;
  } finally {
    Deno.removeSync(probe);
  }
}
