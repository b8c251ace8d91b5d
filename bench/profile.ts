/**
 * Where a benchmark's time goes: a `node --cpu-prof` profile summed per group of functions (inclusive time: a
 * function's samples and those of everything it called), so each results file says what is left to cut.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

/**
 * Milliseconds per group in the one .cpuprofile in `dir`: a sample counts for a group when any frame on its stack is
 * one of the group's function names (the first group that matches, in the order given); `other` is the rest.
 */
export function profileSplit(dir: string, groups: Record<string, string[]>): Record<string, number> {
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) return {};
  const p = JSON.parse(readFileSync(path.join(dir, file), "utf8")) as {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const names = Object.entries(groups);
  const out: Record<string, number> = Object.fromEntries([...names.map(([g]) => [g, 0]), ["other", 0], ["total", 0]]);
  const groupOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = groupOf.get(id);
    if (known) return known;
    const stack = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n))
      stack.add(byId.get(n)!.callFrame.functionName);
    const group = names.find(([, fns]) => fns.some((f) => stack.has(f)))?.[0] ?? "other";
    groupOf.set(id, group);
    return group;
  };
  p.samples.forEach((id, i) => {
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    out[classify(id)]! += ms;
    out.total! += ms;
  });
  for (const k of Object.keys(out)) out[k] = Math.round(out[k]!);
  return out;
}

/** A split as one line of text: "scan 1076 ms (38%), …". */
export function splitText(split: Record<string, number>): string {
  const total = split.total ?? 0;
  return Object.entries(split)
    .filter(([k]) => k !== "total")
    .map(([k, v]) => `${k} ${v} ms (${total ? Math.round((100 * v) / total) : 0}%)`)
    .join(", ");
}
