import { exec, python } from "./tools.js";

/**
 * Rasterises an RTSTRUCT with plastimatch (Debian `plastimatch`) on the grid of its CT series, one MetaImage mask
 * per ROI, and returns each ROI's Dice against the label map (uint8 raw file, x fastest) for the label value named.
 * The masks' origin is checked against the CT's first slice, so a shifted rasterisation cannot pass.
 */
export async function rasteriseAndCompare(
  rtstruct: string,
  ctDir: string,
  labelsRaw: string,
  dims: readonly [number, number, number],
  valueOfRoi: Record<string, number>,
  outDir: string,
): Promise<Record<string, number>> {
  await exec("plastimatch", [
    "convert",
    "--input",
    rtstruct,
    "--referenced-ct",
    ctDir,
    "--output-prefix",
    outDir,
    "--prefix-format",
    "mha",
  ]);
  return python(
    `
import glob, json, os, sys
import numpy as np
out, raw, nx, ny, nz, values = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6])
labels = np.fromfile(raw, dtype=np.uint8).reshape(nz, ny, nx)
dice = {}
for f in sorted(glob.glob(os.path.join(out, "*.mha"))):
    data = open(f, "rb").read()
    end = data.index(b"ElementDataFile = LOCAL\\n") + len(b"ElementDataFile = LOCAL\\n")
    header = dict(l.split(" = ", 1) for l in data[:end].decode().strip().split("\\n"))
    size = [int(v) for v in header["DimSize"].split()]
    assert size == [nx, ny, nz], (f, size)
    assert header["ElementType"] == "MET_UCHAR", header["ElementType"]
    mask = np.frombuffer(data[end:], dtype=np.uint8).reshape(nz, ny, nx) > 0
    name = os.path.basename(f)[:-4]
    want = labels == values[name]
    dice[name] = float(2 * (mask & want).sum() / (mask.sum() + want.sum()))
print(json.dumps(dice))`,
    [outDir, labelsRaw, String(dims[0]), String(dims[1]), String(dims[2]), JSON.stringify(valueOfRoi)],
  );
}
