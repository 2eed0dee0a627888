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
    return db.prepare("SELECT text FROM lines WHERE room = ? ORDER BY id").all(room)
      .map((row) => row.text as string);
  } finally {
    db.close();
  }
}
