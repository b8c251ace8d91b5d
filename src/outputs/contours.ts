import { contours } from "d3-contour";
import { DelineateError } from "../errors.js";

/** A closed polygon on one slice, in pixel-edge coordinates: pixel (i, j) covers [i, i+1] × [j, j+1]. */
export type Ring = [number, number][];

/**
 * The outlines of a binary mask on one slice, traced on pixel edges: one ring per island, its holes joined to it by
 * keyholes (a zero-width cut), which planning systems and rasterisers that fill each contour on its own (plastimatch
 * does) still read as holes. Marching squares comes from d3-contour (binary values, threshold 0.5, no smoothing),
 * whose points are the midpoints of pixel edges; joining midpoints cuts every corner by half a pixel, so each turn
 * is replaced by the pixel corner it cuts, and the midpoints of straight runs are dropped. The rings then enclose
 * exactly the mask's pixels.
 */
export function traceMask(mask: Uint8Array, width: number, height: number): Ring[] {
  const [polygons] = contours().size([width, height]).thresholds([0.5]).smooth(false)(mask as unknown as number[]);
  return (polygons?.coordinates ?? []).map((polygon) => {
    const [outer, ...holes] = polygon.map((ring) => toPixelCorners(ring as Ring));
    return joinHoles(outer!, holes);
  });
}

/** Vertical edges of a ring: [index of its start, x, lower y, upper y]. */
function verticalEdges(ring: Ring): [number, number, number, number][] {
  const out: [number, number, number, number][] = [];
  for (let i = 0; i < ring.length; i++) {
    const [ax, ay] = ring[i]!,
      [bx, by] = ring[(i + 1) % ring.length]!;
    if (ax === bx && ay !== by) out.push([i, ax, Math.min(ay, by), Math.max(ay, by)]);
  }
  return out;
}

/**
 * Joins holes into their outer ring (Eberly's bridge: holes taken right to left, each joined along a row half a
 * pixel into its rightmost edge to the nearest edge of the ring on its right, so no bridge crosses a hole).
 */
function joinHoles(outer: Ring, holes: Ring[]): Ring {
  const rightmost = (r: Ring) => verticalEdges(r).reduce((best, e) => (e[1] > best[1] ? e : best));
  let ring = outer;
  for (const hole of [...holes].sort((a, b) => rightmost(b)[1] - rightmost(a)[1])) {
    const [hi, hx, hy0] = rightmost(hole);
    const y = hy0 + 0.5;
    let target: [number, number] | undefined; // [edge start index in ring, x]
    for (const [i, x, y0, y1] of verticalEdges(ring))
      if (x > hx && y0 < y && y < y1 && (!target || x < target[1])) target = [i, x];
    // impossible for d3's nested rings; refused rather than writing a contour that crosses itself
    if (!target)
      throw new DelineateError("DLN_ERR_OUTPUT_INVALID", "a hole with no enclosing edge to its right", {
        holeX: hx,
        holeY: y,
      });
    const H: [number, number] = [hx, y],
      I: [number, number] = [target[1], y];
    const around = [...hole.slice(hi + 1), ...hole.slice(0, hi + 1)]; // from the split edge's end back to its start
    ring = [...ring.slice(0, target[0] + 1), I, H, ...around, H, I, ...ring.slice(target[0] + 1)];
  }
  return ring;
}

function toPixelCorners(ring: Ring): Ring {
  const pts = ring.slice(0, -1); // d3 repeats the first point at the end
  const corners: Ring = [];
  for (let i = 0; i < pts.length; i++) {
    const [px, py] = pts[i]!;
    const [qx, qy] = pts[(i + 1) % pts.length]!;
    // a point with integer x lies on a vertical pixel edge, one with integer y on a horizontal one
    const pVertical = Number.isInteger(px),
      qVertical = Number.isInteger(qx);
    if (pVertical && !qVertical) corners.push([px, qy]);
    else if (!pVertical && qVertical) corners.push([qx, py]);
  }
  return corners;
}
