/**
 * IEEE half-precision rounding, for emulating nnU-Net's float16 accumulators on CPU
 * (nnunetv2/inference/predict_from_raw_data.py:620-653: `predicted_logits` and `n_predictions` are torch.half).
 * torch adds a float32 tile into a half tensor by computing in float32 and rounding the sum to half, so callers
 * round to float32 first (Math.fround) and then here: the same double rounding.
 */
export function f16round(x: number): number {
  // the common case on the bits of the double: |x| in half's normal range below 2^15
  f64[0] = x;
  const hi = hi32[1]!;
  const e = (hi >>> 20) & 0x7ff;
  if (e >= 1009 && e <= 1037) {
    const rem = hi & 0x3ff; // the 10 low bits of the high word go, and all of the low word
    let keep = hi >>> 10;
    if (rem > 0x200 || (rem === 0x200 && (hi32[0] !== 0 || keep & 1))) keep++;
    hi32[1] = keep << 10;
    hi32[0] = 0;
    return f64[0]!;
  }
  return f16roundSlow(x);
}

const f64 = new Float64Array(1);
const hi32 = new Uint32Array(f64.buffer); // little-endian: [low word, high word]

function f16roundSlow(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  if (a >= 65520) return x > 0 ? Infinity : -Infinity; // half's largest is 65504; from halfway to the next step on, inf
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  if (e < -14) e = -14; // subnormals: a fixed quantum of 2^-24
  const quantum = 2 ** (e - 10);
  const v = a / quantum;
  const f = Math.floor(v);
  const d = v - f;
  const r = d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  return (x < 0 ? -r : r) * quantum;
}

/** Rounds every element of a float32 array to half precision in place. */
export function f16roundArray(a: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = f16round(a[i]!);
  return a;
}

/** Python's round() and numpy's np.round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * f16round for a value already rounded to float32 (the accumulators' case), on its bits: the 13 low mantissa bits
 * dropped with round-half-to-even. Values whose half is subnormal, or near or past half's range, take f16round.
 */
export function f16roundFromFloat32(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const e = (b >>> 23) & 0xff;
  if (e < 113 || e > 141) return f16round(f32[0]!); // |x| < 2^-14, or ≥ 2^15, zero, inf, NaN
  u32[0] = (b + 0xfff + ((b >>> 13) & 1)) & ~0x1fff;
  return f32[0]!;
}
