import assert from "node:assert/strict";
import { WARM_UP_CLIENTS, WARM_UP_LINES, WARM_UP_SENDERS, warmUp } from "./warm_up.ts";

Deno.test("warmUp relays every line to every other client, and leaves nothing open", async () => {
  // Each sender hears the other senders; everyone else hears all of them.
  const expected = WARM_UP_SENDERS * (WARM_UP_SENDERS - 1) * WARM_UP_LINES +
    (WARM_UP_CLIENTS - WARM_UP_SENDERS) * WARM_UP_SENDERS * WARM_UP_LINES;
  assert.equal(await warmUp(), expected);
  // The test's resource and op sanitizers check that its server, sockets and timer are gone.
});
