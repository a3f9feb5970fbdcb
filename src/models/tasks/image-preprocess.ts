/**
 * Image preprocessing for the image tasks: the manifest's `image` section (models/README.md),
 * reproducing transformers' PIL image processors (ViTImageProcessor, YolosImageProcessor) as
 * the pipelines use them: load_image() (EXIF transpose, then PIL `convert('RGB')`), resize the
 * uint8 RGB image with PIL, rescale, normalise, HWC -> NCHW float32.
 *
 * - Decoding is sharp's (libvips): every format sharp reads (JPEG, PNG, WebP, GIF, TIFF, AVIF,
 *   HEIF, SVG…), first page/frame only, rotated by EXIF orientation. Alpha is dropped without
 *   compositing, as PIL's convert('RGB') does (transparent pixels keep their stored colour).
 *   The embedded ICC profile is ignored (`ignoreIcc`), as PIL ignores it; sharp would otherwise
 *   convert to sRGB through it and the pixels would differ from transformers'.
 *   Known differences from PIL (rare inputs): CMYK JPEGs (libvips converts through a CMYK
 *   profile, PIL with a naive formula), 16-bit greyscale PNGs (libvips scales to 8 bits, PIL's
 *   convert clips at 255); BMP and ICO, which PIL reads, are refused (sharp does not read them).
 * - Resizing is done here in JS, not with sharp: a port of Pillow's Resample.c (separable
 *   convolution, the filter's support widened by the downscale factor, 22-bit fixed-point
 *   coefficients, horizontal pass then vertical pass, each rounded to uint8) and of its
 *   nearest-neighbour affine scaling. It gives PIL's bytes exactly (checked against Pillow 12 for
 *   nearest/bilinear/bicubic, up- and downscaling), so `pixel_values` equal the processor's
 *   (max difference 0 on the test images). sharp's own resize (libvips shrink + reduce) was
 *   measured against the processor on the same images: max |difference| after normalisation
 *   0.04-0.13 when downscaling with its closest kernel ('linear'; cubic/mitchell/lanczos3 worse)
 *   and 1.0-2.6 when upscaling (different sample alignment) — too far for score parity.
 *   Cost: ~2 x support x input pixels x 3 multiply-adds: ~100 ms for a 12-megapixel photo,
 *   ~300 ms (bilinear) to ~550 ms (bicubic) at the 40-megapixel limit on this machine's CPU.
 * - preprocessImage() runs decoding, resizing and normalising on a worker thread (this module is
 *   its entry point too), so even a 40-megapixel image keeps the event loop free: only the
 *   encoded bytes go in and the model-sized tensor comes out. resizeRgbAsync() (used on the
 *   calling thread) still yields between chunks of rows.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import sharp from 'sharp';

import { DEFAULT_LIMITS, LimitError, type RequestLimits } from '../limits.js';
import type { Manifest } from '../manifest.js';
import type { Tensor } from '../../runtime/index.js';
import { TaskInputError } from './task-errors.js';

export type Resample = 'nearest' | 'bilinear' | 'bicubic';

/** The manifest's `image` section. */
export interface ImageSpec {
  resize: 'fixed' | 'shortest_edge';
  height: number;
  width: number;
  shortest_edge?: number;
  longest_edge?: number;
  multiple_of?: number;
  resample: Resample;
  do_resize: boolean;
  do_rescale: boolean;
  rescale_factor: number;
  do_normalize: boolean;
  image_mean: [number, number, number];
  image_std: [number, number, number];
  do_pad?: boolean;
}

export interface ImageLimits {
  /** Largest encoded image, in bytes. */
  maxBytes: number;
  /** Largest decoded image, width x height. */
  maxPixels: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxBytes: DEFAULT_LIMITS.maxImageBytes, maxPixels: DEFAULT_LIMITS.maxImagePixels };

/** The image limits among the request limits. */
export function imageLimits(limits: RequestLimits): ImageLimits {
  return { maxBytes: limits.maxImageBytes, maxPixels: limits.maxImagePixels };
}

export interface Size {
  width: number;
  height: number;
}

/** A decoded image: RGB uint8, row-major, 3 bytes per pixel. */
export interface RgbImage extends Size {
  data: Uint8Array;
}

export interface PreprocessedImage {
  tensor: Tensor<'float32'>;
  /** Size after EXIF orientation, before resizing (what boxes are scaled to). */
  original: Size;
  /** Size fed to the model. */
  resized: Size;
}

/** The manifest's image section, checked; a model without one cannot serve an image task. */
export function imageSpec(manifest: Manifest): ImageSpec {
  const s = manifest.image as Partial<ImageSpec> | undefined;
  if (!s) throw new TaskInputError(`model '${manifest.name}' has no image section in its manifest`);
  const bad = (what: string) => new Error(`model '${manifest.name}': the manifest's image section has ${what}`);
  if (s.resize !== 'fixed' && s.resize !== 'shortest_edge') throw bad(`resize '${String(s.resize)}' (fixed or shortest_edge expected)`);
  if (!['nearest', 'bilinear', 'bicubic'].includes(s.resample as string)) throw bad(`resample '${String(s.resample)}'`);
  const positive = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (s.resize === 'fixed' && !(positive(s.height) && positive(s.width))) throw bad('no valid height/width');
  if (s.resize === 'shortest_edge' && !positive(s.shortest_edge)) throw bad('no valid shortest_edge');
  const triple = (v: unknown) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (s.do_normalize && !(triple(s.image_mean) && triple(s.image_std) && s.image_std!.every((x) => x !== 0))) throw bad('no valid image_mean/image_std');
  if (s.do_rescale && !(typeof s.rescale_factor === 'number' && Number.isFinite(s.rescale_factor))) throw bad('no valid rescale_factor');
  return s as ImageSpec;
}

/** Python's round(): halves to even (transformers rounds the YOLOS edge with it). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** (height, width) after resizing: transformers' rule, as models/README.md and exporter/images.py spell it. */
export function outputSize(height: number, width: number, spec: ImageSpec): [number, number] {
  if (!spec.do_resize) return [height, width];
  if (spec.resize === 'fixed') return [spec.height, spec.width];
  let size = spec.shortest_edge!;
  const maxSize = spec.longest_edge;
  let raw: number | undefined;
  if (maxSize) {
    const small = Math.min(height, width);
    const large = Math.max(height, width);
    if ((large / small) * size > maxSize) {
      raw = (maxSize * small) / large;
      size = roundHalfEven(raw);
    }
  }
  let oh: number;
  let ow: number;
  if (width < height) {
    ow = size;
    oh = Math.trunc(((raw ?? size) * height) / width);
  } else if ((height <= width && height === size) || (width <= height && width === size)) {
    oh = height;
    ow = width;
  } else {
    oh = size;
    ow = Math.trunc(((raw ?? size) * width) / height);
  }
  const m = spec.multiple_of;
  if (m) {
    oh -= oh % m;
    ow -= ow % m;
  }
  return [oh, ow];
}

/** Decode to RGB uint8 with sharp (EXIF-oriented, alpha dropped, ICC ignored). TaskInputError when it cannot. */
export async function decodeImage(image: Buffer | Uint8Array, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<RgbImage> {
  if (!image || image.length === 0) throw new TaskInputError('the image is empty');
  if (image.length > limits.maxBytes) {
    throw new LimitError('MAX_IMAGE_BYTES', 413, `the image is ${image.length} bytes, more than MAX_IMAGE_BYTES (${limits.maxBytes})`);
  }
  let meta: sharp.Metadata;
  try {
    meta = await sharp(image, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new TaskInputError(`cannot decode the image: ${sharpMessage(error)}`);
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w < 1 || h < 1) throw new TaskInputError(`the image has no pixels (${w}x${h})`);
  if (w * h > limits.maxPixels) {
    throw new LimitError('MAX_IMAGE_PIXELS', 413, `the image is ${w}x${h} = ${w * h} pixels, more than MAX_IMAGE_PIXELS (${limits.maxPixels})`);
  }
  try {
    const { data, info } = await sharp(image, { autoOrient: true, ignoreIcc: true, limitInputPixels: limits.maxPixels, failOn: 'error' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const pixels = info.width * info.height;
    if (info.channels === 3 && data.length === pixels * 3) {
      return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
    }
    // Defensive: sharp should always give 3 channels here; expand grey, drop extras.
    const out = new Uint8Array(pixels * 3);
    const c = info.channels;
    for (let i = 0; i < pixels; i++) {
      for (let k = 0; k < 3; k++) out[i * 3 + k] = data[i * c + (c >= 3 ? k : 0)]!;
    }
    return { width: info.width, height: info.height, data: out };
  } catch (error) {
    throw new TaskInputError(`cannot decode the image: ${sharpMessage(error)}`);
  }
}

function sharpMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, ' ').trim();
}

// ---------------------------------------------------------------------------------------------
// Pillow's resampling (src/libImaging/Resample.c and Geometry.c's ImagingScaleAffine), 8-bit RGB.

const PRECISION_BITS = 32 - 8 - 2;
const ROUND_HALF = 1 << (PRECISION_BITS - 1);
const CLIP_MAX = 1 << (PRECISION_BITS + 8);

interface Filter {
  support: number;
  fn: (x: number) => number;
}

const FILTERS: Record<Exclude<Resample, 'nearest'>, Filter> = {
  bilinear: {
    support: 1,
    fn: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

interface Coefficients {
  ksize: number;
  /** Per output pixel: first input index, count. */
  bounds: Int32Array;
  /** Per output pixel: ksize fixed-point weights. */
  kk: Int32Array;
}

/** precompute_coeffs + normalize_coeffs_8bpc, for the whole input range (box = 0..inSize). */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const weights = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      weights[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? weights[x]! / ww : weights[x]!;
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  if (v >= CLIP_MAX) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

/** Horizontal pass: output rows [from, to) of `out` from input rows yFirst + [from, to). */
function resampleHorizontal(src: RgbImage, out: RgbImage, yFirst: number, c: Coefficients, from: number, to: number): void {
  const { ksize, bounds, kk } = c;
  const inData = src.data;
  const outData = out.data;
  const outW = out.width;
  for (let y = from; y < to; y++) {
    const rowIn = (y + yFirst) * src.width * 3;
    const rowOut = y * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2]!;
      const xmax = bounds[xx * 2 + 1]!;
      const k0 = xx * ksize;
      let s0 = ROUND_HALF;
      let s1 = ROUND_HALF;
      let s2 = ROUND_HALF;
      for (let x = 0; x < xmax; x++) {
        const k = kk[k0 + x]!;
        const p = rowIn + (x + xmin) * 3;
        s0 += inData[p]! * k;
        s1 += inData[p + 1]! * k;
        s2 += inData[p + 2]! * k;
      }
      outData[rowOut + xx * 3] = clip8(s0);
      outData[rowOut + xx * 3 + 1] = clip8(s1);
      outData[rowOut + xx * 3 + 2] = clip8(s2);
    }
  }
}

/** Vertical pass: output rows [from, to); `bounds` minus `shift` index rows of `src`. */
function resampleVertical(src: RgbImage, out: RgbImage, c: Coefficients, shift: number, from: number, to: number): void {
  const { ksize, bounds, kk } = c;
  const inData = src.data;
  const outData = out.data;
  const stride = src.width * 3;
  for (let yy = from; yy < to; yy++) {
    const ymin = bounds[yy * 2]! - shift;
    const ymax = bounds[yy * 2 + 1]!;
    const k0 = yy * ksize;
    const rowOut = yy * stride;
    for (let i = 0; i < stride; i++) {
      let s = ROUND_HALF;
      for (let y = 0; y < ymax; y++) s += inData[(y + ymin) * stride + i]! * kk[k0 + y]!;
      outData[rowOut + i] = clip8(s);
    }
  }
}

/** Pillow's NEAREST resize (an affine scale with the sample point at each pixel's centre). */
function resizeNearest(src: RgbImage, outH: number, outW: number): RgbImage {
  const coord = (v: number) => (v < 0 ? -1 : Math.trunc(v));
  const out = new Uint8Array(outH * outW * 3);
  const ax = src.width / outW;
  const ay = src.height / outH;
  const xin = new Int32Array(outW).fill(-1);
  let xo = ax * 0.5;
  for (let x = 0; x < outW; x++) {
    const xi = coord(xo);
    if (xi >= 0 && xi < src.width) xin[x] = xi;
    xo += ax;
  }
  let yo = ay * 0.5;
  for (let y = 0; y < outH; y++) {
    const yi = coord(yo);
    if (yi >= 0 && yi < src.height) {
      for (let x = 0; x < outW; x++) {
        const xi = xin[x]!;
        if (xi < 0) continue;
        const p = (yi * src.width + xi) * 3;
        const q = (y * outW + x) * 3;
        out[q] = src.data[p]!;
        out[q + 1] = src.data[p + 1]!;
        out[q + 2] = src.data[p + 2]!;
      }
    }
    yo += ay;
  }
  return { width: outW, height: outH, data: out };
}

/**
 * PIL's Image.resize((outW, outH), resample) of an RGB image, byte for byte, as steps: the
 * convolution runs in chunks of rows (about CHUNK multiply-adds each) with a yield after each, so
 * that resizeRgbAsync can let the event loop run during a large image; resizeRgb runs straight through.
 */
function* resizeSteps(src: RgbImage, outH: number, outW: number, resample: Resample): Generator<void, RgbImage> {
  if (outH === src.height && outW === src.width) return src;
  if (resample === 'nearest') return resizeNearest(src, outH, outW);
  const filter = FILTERS[resample];
  const horiz = coefficients(src.width, outW, filter);
  const vert = coefficients(src.height, outH, filter);
  let img = src;
  let shift = 0;
  if (outW !== src.width) {
    // Only the input rows the vertical pass reads.
    const yFirst = vert.bounds[0]!;
    const yLast = vert.bounds[outH * 2 - 2]! + vert.bounds[outH * 2 - 1]!;
    const out: RgbImage = { width: outW, height: yLast - yFirst, data: new Uint8Array((yLast - yFirst) * outW * 3) };
    const rows = Math.max(1, Math.floor(CHUNK / (outW * horiz.ksize * 3)));
    for (let y = 0; y < out.height; y += rows) {
      resampleHorizontal(src, out, yFirst, horiz, y, Math.min(out.height, y + rows));
      yield;
    }
    img = out;
    shift = yFirst;
  }
  if (outH !== src.height) {
    const out: RgbImage = { width: img.width, height: outH, data: new Uint8Array(outH * img.width * 3) };
    const rows = Math.max(1, Math.floor(CHUNK / (img.width * vert.ksize * 3)));
    for (let y = 0; y < outH; y += rows) {
      resampleVertical(img, out, vert, shift, y, Math.min(outH, y + rows));
      yield;
    }
    img = out;
  }
  return img;
}

/** Multiply-adds between two yields (~10-15 ms on this 2-core machine). */
const CHUNK = 3_000_000;

export function resizeRgb(src: RgbImage, outH: number, outW: number, resample: Resample): RgbImage {
  const steps = resizeSteps(src, outH, outW, resample);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** resizeRgb, yielding to the event loop between chunks of rows. */
export async function resizeRgbAsync(src: RgbImage, outH: number, outW: number, resample: Resample): Promise<RgbImage> {
  const steps = resizeSteps(src, outH, outW, resample);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * uint8 HWC RGB -> float32 [1, 3, H, W]: x * rescale_factor, then (x - mean) / std, rounded the
 * way transformers does it (rescale in float64 then cast to float32; normalise in float32).
 */
export function toPixelValues(img: RgbImage, spec: ImageSpec): Tensor<'float32'> {
  const { width: w, height: h, data } = img;
  const plane = w * h;
  const out = new Float32Array(3 * plane);
  const f = Math.fround;
  // A lookup per channel and byte value: 768 entries instead of 3 x H x W computations.
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const mean = f(spec.image_mean?.[c] ?? 0);
    const std = f(spec.image_std?.[c] ?? 1);
    for (let v = 0; v < 256; v++) {
      let x = spec.do_rescale ? f(v * spec.rescale_factor) : v;
      if (spec.do_normalize) x = f(f(x - mean) / std);
      table[c * 256 + v] = x;
    }
  }
  for (let i = 0; i < plane; i++) {
    out[i] = table[data[i * 3]!]!;
    out[plane + i] = table[256 + data[i * 3 + 1]!]!;
    out[2 * plane + i] = table[512 + data[i * 3 + 2]!]!;
  }
  return { dtype: 'float32', shape: [1, 3, h, w], data: out };
}

/** Bytes -> model input, per the manifest's image section, on a worker thread. */
export async function preprocessImage(image: Buffer | Uint8Array, spec: ImageSpec, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<PreprocessedImage> {
  if (!image || image.length === 0) throw new TaskInputError('the image is empty');
  if (image.length > limits.maxBytes) {
    throw new LimitError('MAX_IMAGE_BYTES', 413, `the image is ${image.length} bytes, more than MAX_IMAGE_BYTES (${limits.maxBytes})`);
  }
  return imageWorkers().run({ image, spec, limits });
}

/** Bytes -> model input on this thread (what the workers run). */
export async function preprocessImageHere(image: Buffer | Uint8Array, spec: ImageSpec, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<PreprocessedImage> {
  const decoded = await decodeImage(image, limits);
  const [oh, ow] = outputSize(decoded.height, decoded.width, spec);
  if (oh < 1 || ow < 1) {
    throw new TaskInputError(
      `the image is ${decoded.width}x${decoded.height}; its aspect ratio is too extreme for this model (it would be resized to ${ow}x${oh})`,
    );
  }
  const resized = resizeRgb(decoded, oh, ow, spec.resample);
  return {
    tensor: toPixelValues(resized, spec),
    original: { width: decoded.width, height: decoded.height },
    resized: { width: ow, height: oh },
  };
}

// ---------------------------------------------------------------------------------------------
// The worker threads preprocessImage() runs on: this module, started with workerData.role.

interface ImageJob {
  id: number;
  image: Uint8Array;
  spec: ImageSpec;
  limits: ImageLimits;
}

type ImageReply = { id: number; ok: PreprocessedImage } | { id: number; error: { kind: 'input' | 'limit' | 'other'; message: string; limit?: string; status?: 400 | 413 } };

const ROLE = 'atenspace-image-preprocess';

class ImageWorkers {
  readonly #workers: { worker: Worker; busy: number }[] = [];
  readonly #pending = new Map<number, { resolve: (r: PreprocessedImage) => void; reject: (e: unknown) => void; worker: { busy: number } }>();
  #next = 0;

  constructor(readonly size: number) {}

  run(job: Omit<ImageJob, 'id'>): Promise<PreprocessedImage> {
    const slot = this.#slot();
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker: slot });
      slot.busy++;
      slot.worker.ref();
      slot.worker.postMessage({ id, ...job } satisfies ImageJob);
    });
  }

  /** The least busy worker, starting one while fewer than `size` run. */
  #slot(): { worker: Worker; busy: number } {
    const idle = this.#workers.find((w) => w.busy === 0);
    if (idle) return idle;
    if (this.#workers.length < this.size) {
      const worker = new Worker(new URL(import.meta.url), { workerData: { role: ROLE } });
      const slot = { worker, busy: 0 };
      worker.on('message', (reply: ImageReply) => this.#answer(reply));
      worker.on('error', (error) => this.#lost(slot, error));
      worker.on('exit', (code) => this.#lost(slot, new Error(`the image worker exited (${code})`)));
      worker.unref();
      this.#workers.push(slot);
      return slot;
    }
    return this.#workers.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  #answer(reply: ImageReply): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    const slot = this.#workers.find((w) => w === pending.worker);
    if (slot && --slot.busy === 0) slot.worker.unref();
    if ('ok' in reply) return pending.resolve(reply.ok);
    const e = reply.error;
    pending.reject(e.kind === 'input' ? new TaskInputError(e.message) : e.kind === 'limit' ? new LimitError(e.limit!, e.status!, e.message) : new Error(e.message));
  }

  /** A worker died: its jobs fail, the next job starts a fresh one. */
  #lost(slot: { worker: Worker; busy: number }, error: unknown): void {
    const index = this.#workers.indexOf(slot);
    if (index < 0) return;
    this.#workers.splice(index, 1);
    for (const [id, p] of this.#pending) {
      if (p.worker !== slot) continue;
      this.#pending.delete(id);
      p.reject(error);
    }
  }
}

let workers: ImageWorkers | undefined;

/** Up to one worker per core (2 to 4). */
function imageWorkers(): ImageWorkers {
  workers ??= new ImageWorkers(Math.min(4, Math.max(2, availableParallelism())));
  return workers;
}

if (!isMainThread && (workerData as { role?: string } | undefined)?.role === ROLE) {
  const port = parentPort!;
  port.on('message', (job: ImageJob) => {
    preprocessImageHere(job.image, job.spec, job.limits).then(
      (ok) => port.postMessage({ id: job.id, ok } satisfies ImageReply, [ok.tensor.data.buffer as ArrayBuffer]),
      (error: unknown) => {
        const kind = error instanceof TaskInputError ? 'input' : error instanceof LimitError ? 'limit' : 'other';
        const message = error instanceof Error ? error.message : String(error);
        port.postMessage({ id: job.id, error: { kind, message, ...(error instanceof LimitError ? { limit: error.limit, status: error.status } : {}) } } satisfies ImageReply);
      },
    );
  });
}
