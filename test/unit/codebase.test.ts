import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";
import { ROOT as repoRoot } from "../helpers/tools.js";

// Rules of the codebase that the formatter and linter cannot state: checked on the source itself, with the
// TypeScript parser, so a later change that breaks one fails the suite with the place named.

const SRC = path.join(repoRoot, "src");
/** The stage folders: every failure that leaves them is a DelineateError with a code from the error table. */
const STAGE_FOLDERS = [
  "config",
  "dicom",
  "pacs",
  "volume",
  "models",
  "inference",
  "outputs",
  "route",
  "jobs",
  "ingest",
];
const MAX_FUNCTION_LINES = 100;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [full] : [];
  });
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
}

function walk(node: ts.Node, visit: (n: ts.Node) => void): void {
  visit(node);
  node.forEachChild((child) => walk(child, visit));
}

function where(sf: ts.SourceFile, node: ts.Node): string {
  const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  return `${path.relative(repoRoot, sf.fileName)}:${line + 1}`;
}

const isNew = (n: ts.Node, name: string): n is ts.NewExpression =>
  ts.isNewExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === name;

describe("codebase rules", () => {
  const files = sourceFiles(SRC).map(parse);

  it("no plain Error is made in a stage folder or at the top of src", () => {
    const found: string[] = [];
    for (const sf of files) {
      const folder = path.relative(SRC, sf.fileName).split(path.sep)[0]!;
      if (folder.endsWith(".ts") ? false : !STAGE_FOLDERS.includes(folder)) continue;
      walk(sf, (n) => {
        if (isNew(n, "Error") || isNew(n, "TypeError") || isNew(n, "RangeError")) found.push(where(sf, n));
      });
    }
    assert.deepEqual(found, [], "make these DelineateErrors with a code from src/errors.ts");
  });

  it("a DelineateError made in a catch clause keeps what was caught as its cause", () => {
    const found: string[] = [];
    for (const sf of files) {
      walk(sf, (n) => {
        if (!ts.isCatchClause(n) || !n.variableDeclaration) return;
        const caught = n.variableDeclaration.name.getText(sf);
        walk(n.block, (inner) => {
          if (!isNew(inner, "DelineateError")) return;
          const options = inner.arguments?.[3];
          const keeps =
            options &&
            ts.isObjectLiteralExpression(options) &&
            options.properties.some((p) => p.name?.getText(sf) === "cause" && p.getText(sf).includes(caught));
          if (!keeps) found.push(where(sf, inner));
        });
      });
    }
    assert.deepEqual(found, [], "pass { cause: <the caught error> } as the fourth argument");
  });

  it("no catch clause in src throws its reason away", () => {
    const found: string[] = [];
    for (const sf of files) {
      walk(sf, (n) => {
        if (!ts.isCatchClause(n)) return;
        // An empty block, or one without a binding and without a comment saying why the error does not matter.
        const text = n.getText(sf);
        const commented = /\/\/|\/\*/.test(text);
        if (n.block.statements.length === 0 && !commented) found.push(where(sf, n));
        if (!n.variableDeclaration && !commented) found.push(where(sf, n));
      });
    }
    assert.deepEqual(found, [], "bind the error and keep it (cause), or say in a comment why it does not matter");
  });

  it(`no function in src is longer than ${MAX_FUNCTION_LINES} lines`, () => {
    const found: string[] = [];
    for (const sf of files) {
      walk(sf, (n) => {
        if (!ts.isFunctionLike(n) || !("body" in n) || !n.body) return;
        const start = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
        const lines = end - start + 1;
        if (lines > MAX_FUNCTION_LINES) found.push(`${where(sf, n)} (${lines} lines)`);
      });
    }
    assert.deepEqual(found, [], "split these into functions with one job each");
  });

  it("tests and benchmarks make temporary folders with tempDir, never mkdtemp (so each is removed at exit)", () => {
    const found: string[] = [];
    for (const sf of ["test", "bench", "scripts"].flatMap((d) => sourceFiles(path.join(repoRoot, d))).map(parse)) {
      walk(sf, (n) => {
        if (!ts.isCallExpression(n)) return;
        const callee = ts.isPropertyAccessExpression(n.expression) ? n.expression.name : n.expression;
        if (ts.isIdentifier(callee) && /^mkdtemp(Sync)?$/.test(callee.text)) found.push(where(sf, n));
      });
    }
    assert.deepEqual(found, [], "use tempDir(prefix) from harness/tempDir.ts (test/helpers/tools.ts re-exports it)");
  });
});
