/**
 * Splits a segmentation network's last 1×1×1 convolution (its "head") off the ONNX graph, so the engine can blend
 * the few features that go into it instead of the many class logits that come out of it.
 *
 * Why this is exact (up to float rounding): a 1×1×1 convolution is the same affine map at every voxel,
 * logits = W·f + b, and Gaussian blending is a weighted mean; a weighted mean commutes with an affine map,
 * Σwᵢ(W fᵢ + b) / Σwᵢ = W (Σwᵢ fᵢ / Σwᵢ) + b. Averaging mirrorings (a mean) and folds (W and b averaged, features
 * side by side) commute with it the same way. The sums are taken in another order than the network's, so the
 * logits agree to float32 rounding, not to the bit.
 *
 * Own code rather than a protobuf library: re-encoding a parsed model without dropping fields needs the whole
 * onnx.proto schema; at the wire level the cut is a few fields and every other byte is kept as it is.
 */
import {
  concat,
  integers,
  lengthDelimited,
  payload,
  readFields,
  text,
  varintField,
  type WireField,
} from "./protobufWire.js";

/** The split-off last convolution: logits[k] = Σ_c weight[k · features + c] · f[c] + bias[k]. */
export interface ConvHead {
  /** K × C, row-major */
  weight: Float32Array;
  /** K (zeros when the convolution has no bias) */
  bias: Float32Array;
  /** K: what the whole network outputs per voxel */
  classes: number;
  /** C: what the network without its head outputs per voxel */
  features: number;
}

export interface HeadSplit {
  /** the ONNX model without its last convolution */
  onnx: Uint8Array;
  /** its (only) output: the convolution's input */
  featureOutput: string;
  head: ConvHead;
}

// field numbers in onnx.proto
const MODEL_GRAPH = 7;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12 } as const;
const NODE = { input: 1, output: 2, opType: 4, attribute: 5, domain: 7 } as const;
const ATTRIBUTE = { name: 1, i: 3, s: 4, ints: 8 } as const;
const TENSOR = { dims: 1, dataType: 2, floatData: 4, name: 8, rawData: 9, dataLocation: 14 } as const;
const TENSOR_FLOAT = 1;
const TENSOR_EXTERNAL = 1;

/**
 * The model without its head and the head, when the node that makes the graph's only output is a Conv with a
 * 1×1(×1) kernel, stride 1, dilation 1, no padding, one group, and float32 weight (and bias) stored in the file;
 * otherwise undefined (the model then runs whole). Nothing else in the file is changed.
 */
export function splitHead(onnx: Uint8Array): HeadSplit | undefined {
  try {
    return split(onnx);
  } catch {
    // bytes this reader cannot follow: the model runs whole, and onnxruntime says what is wrong with it, if anything
    return undefined;
  }
}

function split(onnx: Uint8Array): HeadSplit | undefined {
  const modelFields = readFields(onnx);
  const graphs = modelFields.filter((f) => f.field === MODEL_GRAPH && f.wire === 2);
  if (graphs.length !== 1) return undefined;
  const graph = payload(onnx, graphs[0]!);
  const fields = readFields(graph);
  const of = (n: number) => fields.filter((f) => f.field === n && f.wire === 2);
  const outputs = of(GRAPH.output);
  if (outputs.length !== 1) return undefined;
  const outputName = stringField(payload(graph, outputs[0]!), 1);
  const nodes = of(GRAPH.node).map((f) => node(graph, f));
  const producers = nodes.filter((n) => n.outputs.includes(outputName));
  const conv = producers[0];
  if (producers.length !== 1 || !conv || conv.opType !== "Conv" || conv.domain !== "" || conv.outputs.length !== 1)
    return undefined;
  const [x, w, b] = conv.inputs;
  if (!x || !w || conv.inputs.length > 3) return undefined;
  // the features must come from a node, and nothing but the head may read the logits
  if (!nodes.some((n) => n !== conv && n.outputs.includes(x))) return undefined;
  if (nodes.some((n) => n.inputs.includes(outputName))) return undefined;
  const initializers = of(GRAPH.initializer).map((f) => ({ f, t: tensor(graph, f) }));
  const weight = initializers.find((i) => i.t.name === w)?.t;
  const bias = b ? initializers.find((i) => i.t.name === b)?.t : undefined;
  if (!weight?.values || (b && !bias?.values)) return undefined;
  const [classes, features, ...kernel] = weight.dims;
  if (classes === undefined || features === undefined || kernel.length < 1 || kernel.some((k) => k !== 1))
    return undefined;
  if (bias && (bias.dims.length !== 1 || bias.dims[0] !== classes)) return undefined;
  if (!plainAttributes(graph, conv.attributes)) return undefined;

  // the head's initializers go (and their graph inputs, as older exporters list them) unless another node reads them
  const readElsewhere = (name: string) => nodes.some((n) => n !== conv && n.inputs.includes(name));
  const drop = new Set([w, ...(b ? [b] : [])].filter((n) => !readElsewhere(n)));
  const newOutput = lengthDelimited(GRAPH.output, floatTensorValueInfo(x, weight.dims.length));
  const kept = fields.flatMap((f) => {
    if (f === outputs[0]) return [newOutput];
    if (f.field === GRAPH.node && f.wire === 2 && f.start === conv.at) return [];
    if (f.field === GRAPH.initializer && f.wire === 2 && drop.has(tensor(graph, f).name)) return [];
    if (f.field === GRAPH.input && f.wire === 2 && drop.has(stringField(payload(graph, f), 1))) return [];
    return [graph.subarray(f.start, f.end)];
  });
  const newGraph = lengthDelimited(MODEL_GRAPH, concat(kept));
  const model = concat(modelFields.map((f) => (f === graphs[0] ? newGraph : onnx.subarray(f.start, f.end))));
  return {
    onnx: model,
    featureOutput: x,
    head: {
      weight: weight.values,
      bias: bias?.values ?? new Float32Array(classes),
      classes,
      features,
    },
  };
}

/** The first string (length-delimited) field `field` of a message, or "". */
function stringField(message: Uint8Array, field: number): string {
  const f = readFields(message).find((x) => x.field === field && x.wire === 2);
  return f ? text(message, f) : "";
}

interface GraphNode {
  at: number;
  inputs: string[];
  outputs: string[];
  opType: string;
  domain: string;
  attributes: WireField[];
}

function node(graph: Uint8Array, f: WireField): GraphNode {
  const bytes = payload(graph, f);
  const fields = readFields(bytes);
  const strings = (n: number) => fields.filter((x) => x.field === n && x.wire === 2).map((x) => text(bytes, x));
  return {
    at: f.start,
    inputs: strings(NODE.input),
    outputs: strings(NODE.output),
    opType: strings(NODE.opType)[0] ?? "",
    domain: strings(NODE.domain)[0] ?? "",
    // offsets into the graph's bytes, so the attributes can be read from them
    attributes: fields
      .filter((x) => x.field === NODE.attribute && x.wire === 2)
      .map((x) => ({ ...x, start: x.start + f.value, end: x.end + f.value, value: x.value + f.value })),
  };
}

/** Whether a Conv's attributes leave it a plain per-voxel map: stride and dilation 1, no padding, one group. */
function plainAttributes(graph: Uint8Array, attributes: readonly WireField[]): boolean {
  for (const a of attributes) {
    const bytes = payload(graph, a);
    const fields = readFields(bytes);
    const name = stringField(bytes, ATTRIBUTE.name);
    const ints = integers(bytes, fields, ATTRIBUTE.ints);
    const int = fields.find((x) => x.field === ATTRIBUTE.i && x.wire === 0)?.value;
    const ok =
      name === "kernel_shape" || name === "strides" || name === "dilations"
        ? ints.every((v) => v === 1)
        : name === "pads"
          ? ints.every((v) => v === 0)
          : name === "group"
            ? int === 1
            : // with a 1-voxel kernel and stride 1 every auto_pad mode pads nothing
              name === "auto_pad";
    if (!ok) return false;
  }
  return true;
}

interface Tensor {
  name: string;
  dims: number[];
  /** the values, when float32 and stored in the file */
  values?: Float32Array;
}

function tensor(graph: Uint8Array, f: WireField): Tensor {
  const bytes = payload(graph, f);
  const fields = readFields(bytes);
  const name = stringField(bytes, TENSOR.name);
  const dims = integers(bytes, fields, TENSOR.dims);
  const dataType = fields.find((x) => x.field === TENSOR.dataType && x.wire === 0)?.value;
  const location = fields.find((x) => x.field === TENSOR.dataLocation && x.wire === 0)?.value;
  if (dataType !== TENSOR_FLOAT || location === TENSOR_EXTERNAL) return { name, dims };
  const count = dims.reduce((n, d) => n * d, 1);
  const raw = fields.find((x) => x.field === TENSOR.rawData && x.wire === 2);
  const values = new Float32Array(count);
  if (raw) {
    const data = payload(bytes, raw);
    if (data.length !== count * 4) return { name, dims };
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < count; i++) values[i] = view.getFloat32(i * 4, true);
    return { name, dims, values };
  }
  // float_data: packed (one length-delimited field) or one fixed32 field per value
  let n = 0;
  for (const x of fields) {
    if (x.field !== TENSOR.floatData) continue;
    const at = x.wire === 2 ? x.value : x.wire === 5 ? x.end - 4 : -1;
    if (at < 0) return { name, dims };
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, x.end - at);
    for (let o = 0; o + 4 <= view.byteLength; o += 4) {
      if (n >= count) return { name, dims };
      values[n++] = view.getFloat32(o, true);
    }
  }
  return n === count ? { name, dims, values } : { name, dims };
}

/** A graph output: `name`, a float tensor of the given rank, every dimension unknown. */
function floatTensorValueInfo(name: string, rank: number): Uint8Array {
  const unknownDim = lengthDelimited(1, new Uint8Array(0));
  const shape = lengthDelimited(2, concat(Array.from({ length: rank }, () => unknownDim)));
  const tensorType = lengthDelimited(1, concat([varintField(1, TENSOR_FLOAT), shape]));
  return concat([lengthDelimited(1, new TextEncoder().encode(name)), lengthDelimited(2, tensorType)]);
}
