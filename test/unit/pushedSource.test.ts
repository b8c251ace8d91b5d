import assert from "node:assert/strict";
import { after, it } from "node:test";
import { stopTestPostgres, testStore } from "../helpers/store.js";

after(stopTestPostgres);

it("a pushed study announced again by the change feed is routed again from its pushed copy, not the PACS's", async () => {
  const t = await testStore();
  const store = t.store;
  const study = "1.2.826.0.1.3680043.10.7";
  await store.enqueue([study], undefined, "pushed");
  const route = (await store.claimNext())!;
  assert.equal(route.source, "pushed");
  await store.complete(route, { kind: "route", timings: {}, decisions: [], jobs: [] });
  // our results reached the PACS: its change feed announces the study, and the PACS holds only those results
  assert.equal(await store.enqueue([study]), 1, "routed again");
  const again = (await store.list({ studyInstanceUID: study, kind: "route" }))[0]!;
  assert.deepEqual([again.state, again.source], ["queued", "pushed"], "it flipped to pacs, then ended skipped");
  await t.dispose();
});
