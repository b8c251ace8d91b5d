import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import { ERROR_CODES } from "../../src/errors.js";
import { ROOT } from "../helpers/tools.js";

it("docs/errors.md documents exactly the error codes in src/errors.ts, with the same stage and retry flag", () => {
  const doc = readFileSync(path.join(ROOT, "docs", "errors.md"), "utf8");
  const rows = [...doc.matchAll(/^\| `(DLN_ERR_[A-Z_]+)` \| (\w+) \| (yes|no) \|/gm)].map((m) => [
    m[1],
    m[2],
    m[3] === "yes",
  ]);
  const code = Object.entries(ERROR_CODES).map(([k, v]) => [k, v.stage, v.retryable]);
  assert.deepEqual(rows.sort(), code.sort());
});
