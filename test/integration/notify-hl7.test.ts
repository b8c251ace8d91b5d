import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { after, afterEach, describe, it } from "node:test";
import type { JobStore } from "../../src/jobs/jobStore.js";
import { createLogger } from "../../src/log.js";
import { controlId } from "../../src/notify/hl7.js";
import { readPeerCa } from "../../src/notify/mllp.js";
import { hl7Notifier } from "../../src/notify/notifiers.js";
import { NotificationSender } from "../../src/notify/sender.js";
import { type MllpPeer, startMllpPeer } from "../helpers/mllpPeer.js";
import { waitFor } from "../helpers/orthanc.js";
import { completedSegmentJob } from "../helpers/outboxFixtures.js";
import { type TestStore, testStore } from "../helpers/store.js";
import { tempDir } from "../helpers/tools.js";

const log = createLogger({ level: "error", silent: true });
const identity = {
  sendingApplication: "DELINEATE",
  sendingFacility: "TEST",
  receivingApplication: "RIS",
  receivingFacility: "TEST",
};

/** The outbox against a RIS on python3-hl7: ORU^R01 over MLLP, ACKs, retries, a peer that never answers. */
describe("HL7 v2 notifications over MLLP to a python3-hl7 peer", { concurrency: false }, () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });
  after(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  const setUp = async (
    behaviours: string[],
    ackTimeoutMs = 5000,
    tls?: { certFile: string; keyFile: string; caFile: string },
  ) => {
    const peer: MllpPeer = await startMllpPeer(behaviours, tls);
    cleanup.push(() => peer.stop());
    const t: TestStore = await testStore();
    cleanup.push(() => t.dispose());
    const sender = new NotificationSender(
      t.store,
      new Map([
        [
          "hl7",
          hl7Notifier(
            {
              host: "127.0.0.1",
              port: peer.port,
              ackTimeoutMs,
              ...(tls ? { tls: { ca: readPeerCa(tls.caFile), servername: "localhost" } } : {}),
            },
            identity,
          ),
        ],
      ]),
      { maxAttempts: 5, retryBaseSeconds: 0.2, maxRetrySeconds: 1, idlePollMs: 50 },
      log,
    );
    cleanup.push(() => sender.stop());
    return { peer, store: t.store, sender };
  };
  const settled = (store: JobStore, jobId: string, state: "sent" | "failed") =>
    waitFor(
      `the notification ${state}`,
      async () => {
        const [n] = await store.notifications(jobId);
        return n?.state === state ? n : undefined;
      },
      20_000,
      50,
    );

  it("sends an ORU^R01 whose PID, ORC, OBR and OBX segments the peer parses; AA records it sent", async () => {
    const { peer, store, sender } = await setUp(["AA"]);
    const job = await completedSegmentJob(store, "1.2.840.99.17.1", ["hl7"]);
    sender.start();
    const n = await settled(store, job.id, "sent");
    assert.equal(n.attempts, 1);
    const [m, ...more] = peer.received();
    assert.equal(more.length, 0);
    assert.ok(m);
    assert.equal(m.type, "ORU^R01^ORU_R01");
    assert.equal(m.version, "2.5.1");
    assert.equal(m.controlId, controlId(n));
    assert.equal(m.pid[0]?.[3], "NOTIFY-17");
    assert.equal(m.pid5family, "Test", "the name's components survive as HL7 components");
    assert.equal(m.pid[0]?.[7], "19700101");
    assert.equal(m.orc[0]?.[1], "RE");
    assert.equal(m.obr[0]?.[2], "ACC-0042", "placer order number: the accession number");
    assert.equal(m.obr[0]?.[3], "ACC-0042", "filler order number: the accession number");
    assert.equal(m.obr[0]?.[25], "P", "preliminary");
    const [uid, liver, spleen, text, ...rest] = m.obx;
    assert.equal(rest.length, 0);
    assert.deepEqual([uid?.[2], uid?.[3], uid?.[5]], ["ST", "110180^Study Instance UID^DCM", "1.2.840.99.17.1"]);
    assert.deepEqual(
      [liver?.[2], liver?.[3], liver?.[5], liver?.[6], liver?.[11]],
      ["NM", "10200004^Liver volume^SCT", "1523.25", "mL^milliliter^UCUM", "P"],
    );
    assert.deepEqual([spleen?.[3], spleen?.[5]], ["78961009^Spleen volume^SCT", "187.5"]);
    assert.equal(text?.[2], "TX");
    const [summary, disclaimer] = m.obxTexts[0] ?? [];
    assert.match(summary ?? "", /liver 1523\.25 mL, spleen 187\.5 mL/);
    assert.equal(disclaimer, "NOT FOR CLINICAL USE");
  });

  it("sends again after AE and after a dropped connection, and exactly once after the ACK", async () => {
    const { peer, store, sender } = await setUp(["AE", "drop", "AA"]);
    const job = await completedSegmentJob(store, "1.2.840.99.17.2", ["hl7"]);
    sender.start();
    const n = await settled(store, job.id, "sent");
    assert.equal(n.attempts, 3);
    await new Promise((r) => setTimeout(r, 1500)); // longer than any backoff: nothing more comes
    const got = peer.received();
    assert.deepEqual(
      got.map((m) => m.behaviour),
      ["AE", "drop", "AA"],
    );
    assert.equal(new Set(got.map((m) => m.controlId)).size, 1, "a retry is the same message (MSH-10)");
  });

  it("records AR as failed, with the error, and does not send it again", async () => {
    const { peer, store, sender } = await setUp(["AR"]);
    const job = await completedSegmentJob(store, "1.2.840.99.17.3", ["hl7"]);
    sender.start();
    const n = await settled(store, job.id, "failed");
    assert.equal(n.lastError?.code, "DLN_ERR_NOTIFY_REJECTED");
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(peer.received().length, 1);
  });

  it("survives a peer that never answers: no ACK in time is retried later, and the sender still stops", async () => {
    const { peer, store, sender } = await setUp(["silent", "silent", "silent", "silent", "silent"], 300);
    const job = await completedSegmentJob(store, "1.2.840.99.17.4", ["hl7"]);
    sender.start();
    await waitFor("two attempts", async () => peer.received().length >= 2 || undefined, 20_000, 50);
    const [n] = await store.notifications(job.id);
    assert.equal(n?.lastError?.code, "DLN_ERR_NOTIFY_UNAVAILABLE");
    assert.match(n?.lastError?.message ?? "", /no ACK within 300 ms/);
    await sender.stop();
    // stopped means stopped: no attempt after stop() resolved, though the peer still holds messages unanswered
    const sent = peer.received().length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(peer.received().length, sent, "no attempt after stop()");
  });

  it("speaks MLLP over TLS to a peer whose certificate the configured CA file vouches for", async () => {
    const dir = tempDir("mllp-tls-");
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const certFile = path.join(dir, "peer.pem");
    const keyFile = path.join(dir, "peer.key");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
        "-keyout",
        keyFile,
        "-out",
        certFile,
      ],
      { stdio: "ignore" },
    );
    const { peer, store, sender } = await setUp(["AA"], 5000, { certFile, keyFile, caFile: certFile });
    const job = await completedSegmentJob(store, "1.2.840.99.17.5", ["hl7"]);
    sender.start();
    const n = await settled(store, job.id, "sent");
    assert.equal(n.attempts, 1);
    assert.equal(peer.received()[0]?.pid[0]?.[3], "NOTIFY-17");
  });
});
