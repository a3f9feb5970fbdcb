// The image tasks against transformers: preprocessing gives the image processor's pixel_values,
// classification its softmax top-k, detection its post_process_object_detection; bad input is a
// TaskInputError naming the problem.
//
// References: test/fixtures/make_image_fixtures.py (transformers eager on the source checkpoints of
// the exported test-vit / test-yolos, images loaded as the pipelines load them).
// Tolerances: pixels equal the processor's (PIL's resampling is ported byte for byte and the
// float32 arithmetic follows transformers'; measured 0) — 1e-6 for lossless formats, 0.02 (just over
// one grey level / std) for JPEG, whose decoder (sharp's libvips vs Pillow's libjpeg-turbo) could
// round differently on another build (identical here). With equal pixels the only difference left is
// model.pt vs eager, which the exporter bounds by 1e-4 on the logits; a softmax moves by at most half
// that, so scores are held to 1e-4, and boxes (relative coordinates from the same bound) to 1e-4 of
// the image's width / height in pixels. Measured differences are printed as comments.
import { join } from 'node:path';
import { readFileSync } from 'node:fs';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { ModelRegistry } from '../../src/models/registry.js';
import { ModelRepository } from '../../src/models/repository.js';
import { noopObserver, type Stage } from '../../src/models/observer.js';
import { classify } from '../../src/models/tasks/image-classification.js';
import { pngHeader } from '../helpers/images.js';
import { LimitError } from '../../src/models/limits.js';
import { DEFAULT_IMAGE_LIMITS, decodeImage, imageSpec, preprocessImage, type Resample, resizeRgb, resizeRgbAsync } from '../../src/models/tasks/image-preprocess.js';
import { detect, type Detection } from '../../src/models/tasks/object-detection.js';
import { TaskInputError } from '../../src/models/tasks/task-errors.js';
import { TaskRuntime } from '../../src/models/tasks/task-runtime.js';
import { pythonFixtures, readJson } from '../helpers/python-fixtures.js';

interface Scored {
  label: string;
  score: number;
}
interface Cases {
  images: Record<string, { width: number; height: number }>;
  vit_labels: string[];
  vit: Record<string, { shape: number[]; pixel_values: number[]; probabilities: number[]; top5: Scored[] }>;
  yolos: Record<string, { shape: number[]; pixel_values: number[]; target_size: [number, number]; all: Detection[]; threshold: number; above: Detection[] }>;
  resize: { image: string; resample: Resample; height: number; width: number; data: number[] }[];
}

const dir = pythonFixtures('test/fixtures/make_image_fixtures.py', ['exporter']);
const cases = readJson<Cases>(join(dir, 'cases.json'));
const image = (name: string) => readFileSync(join(dir, 'images', name));
const names = Object.keys(cases.images);

const stages: [string, Stage][] = [];
const registry = new ModelRegistry(new ModelRepository(join(dir, 'models')), {
  device: 'cpu',
  memoryLimitBytes: 0,
  serving: { maxQueueDelayMs: 0, instances: 1, maxQueueSize: 1024 },
  // wait for company, so that the concurrent classifications below share batches whatever the timing
  perModel: { 'test-vit': { maxQueueDelayMs: 50 } },
  warmup: false,
  lazyLoad: true,
});
const runtime = new TaskRuntime(registry, { ...noopObserver, stage: (model, stage) => void stages.push([model, stage]) });
await registry.refresh();
t.teardown(() => registry.close());

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

t.test('resizing equals PIL byte for byte', async (t) => {
  for (const c of cases.resize) {
    const src = await decodeImage(image(c.image));
    for (const out of [resizeRgb(src, c.height, c.width, c.resample), await resizeRgbAsync(src, c.height, c.width, c.resample)]) {
      t.equal(out.data.length, c.data.length);
      t.equal(maxAbs(out.data, c.data), 0, `${c.image} ${c.resample} -> ${c.width}x${c.height}`);
    }
  }
});

t.test('preprocessing reproduces the image processors pixel_values', async (t) => {
  for (const model of ['vit', 'yolos'] as const) {
    const spec = imageSpec((await registry.find(`test-${model}`)).manifest!);
    let worst = 0;
    for (const name of names) {
      const ref = cases[model][name]!;
      const got = await preprocessImage(image(name), spec);
      t.same(got.tensor.shape, ref.shape, `${model} ${name}: shape`);
      t.same(got.original, cases.images[name], `${model} ${name}: original size after EXIF orientation`);
      t.same([got.resized.height, got.resized.width], ref.shape.slice(2));
      const diff = maxAbs(got.tensor.data, ref.pixel_values);
      t.ok(diff <= (name.endsWith('.jpg') ? 0.02 : 1e-6), `${model} ${name}: max |pixel diff| ${diff}`);
      worst = Math.max(worst, diff);
    }
    t.comment(`${model}: max |pixel_values - processor| over ${names.length} images = ${worst}`);
  }
});

t.test('image classification equals transformers softmax top-k', async (t) => {
  let worst = 0;
  for (const name of names) {
    const ref = cases.vit[name]!;
    const { labels } = await classify(runtime, 'test-vit', image(name), {});
    t.same(labels.map((l) => l.label), ref.top5.map((l) => l.label), `${name}: top-5 labels`);
    for (const l of labels) {
      const diff = Math.abs(l.score - ref.probabilities[cases.vit_labels.indexOf(l.label)]!);
      worst = Math.max(worst, diff);
      t.ok(diff <= 1e-4, `${name} ${l.label}: |score diff| ${diff}`);
    }
  }
  t.comment(`max |score - transformers| = ${worst}`);
  const two = await classify(runtime, 'test-vit', image(names[0]!), { topK: 2 });
  t.same(two.labels.map((l) => l.label), cases.vit[names[0]!]!.top5.slice(0, 2).map((l) => l.label));
  const sum = (await classify(runtime, 'test-vit', image(names[0]!), { topK: 5 })).labels.reduce((s, l) => s + l.score, 0);
  t.ok(Math.abs(sum - 1) < 1e-6, 'all labels: probabilities sum to 1');
});

function compareDetections(t: Test, got: Detection[], want: Detection[], size: { width: number; height: number }, what: string) {
  let score = 0;
  let box = 0;
  t.same(got.map((d) => d.label), want.map((d) => d.label), `${what}: labels in score order`);
  want.forEach((w, i) => {
    const g = got[i];
    if (!g) return;
    score = Math.max(score, Math.abs(g.score - w.score));
    const rel = Math.max(
      Math.abs(g.box.xmin - w.box.xmin) / size.width,
      Math.abs(g.box.xmax - w.box.xmax) / size.width,
      Math.abs(g.box.ymin - w.box.ymin) / size.height,
      Math.abs(g.box.ymax - w.box.ymax) / size.height,
    );
    box = Math.max(box, rel);
  });
  t.ok(score <= 1e-4, `${what}: max |score diff| ${score}`);
  t.ok(box <= 1e-4, `${what}: max |box diff| / image side ${box}`);
  return { score, box };
}

t.test('object detection equals transformers post_process_object_detection', async (t) => {
  let worstScore = 0;
  let worstBox = 0;
  let worstPx = 0;
  for (const name of names) {
    const ref = cases.yolos[name]!;
    const size = cases.images[name]!;
    t.same(ref.target_size, [size.height, size.width]);
    const all = (await detect(runtime, 'test-yolos', image(name), { threshold: 0 })).detections;
    t.equal(all.length, ref.all.length, `${name}: threshold 0 keeps every detection token`);
    const d = compareDetections(t, all, ref.all, size, `${name} threshold 0`);
    worstScore = Math.max(worstScore, d.score);
    worstBox = Math.max(worstBox, d.box);
    ref.all.forEach((w, i) => {
      const g = all[i]!.box;
      worstPx = Math.max(worstPx, Math.abs(g.xmin - w.box.xmin), Math.abs(g.xmax - w.box.xmax), Math.abs(g.ymin - w.box.ymin), Math.abs(g.ymax - w.box.ymax));
    });
    const some = (await detect(runtime, 'test-yolos', image(name), { threshold: ref.threshold })).detections;
    t.equal(some.length, ref.above.length, `${name}: threshold ${ref.threshold.toFixed(4)} keeps ${ref.above.length}`);
    compareDetections(t, some, ref.above, size, `${name} threshold ${ref.threshold.toFixed(4)}`);
  }
  t.comment(`max |score diff| ${worstScore}, max |box diff| ${worstPx} px (${worstBox} of the image side)`);
  // transformers' default threshold is 0.5
  const name = names[0]!;
  const dflt = (await detect(runtime, 'test-yolos', image(name), {})).detections;
  t.same(dflt.map((d) => d.label), cases.yolos[name]!.all.filter((d) => d.score > 0.5).map((d) => d.label), 'default threshold 0.5');
});

t.test('concurrent requests batch and give the same answers', async (t) => {
  const entry = await registry.load('test-vit');
  const before = { ...entry.stats };
  const results = await Promise.all(names.map((n) => classify(runtime, 'test-vit', image(n), { topK: 1 })));
  results.forEach((r, i) => t.equal(r.labels[0]!.label, cases.vit[names[i]!]!.top5[0]!.label));
  t.equal(entry.stats.inferences - before.inferences, names.length);
  const executions = entry.stats.executions - before.executions;
  t.ok(executions < names.length, `${names.length} images in ${executions} executions`);
  // Detection inputs of different sizes run apart but each one right.
  const dets = await Promise.all(names.map((n) => detect(runtime, 'test-yolos', image(n), { threshold: 0 })));
  dets.forEach((r, i) => t.same(r.detections.map((d) => d.label), cases.yolos[names[i]!]!.all.map((d) => d.label)));
});

t.test('the demo models serve too', async (t) => {
  const { labels } = await classify(runtime, 'demo-vit', image(names[0]!), { topK: 3 });
  t.equal(labels.length, 3);
  // transformers' init: all ten detection tokens score ~1/6, none above the default 0.5
  t.same((await detect(runtime, 'demo-yolos', image(names[0]!), {})).detections, []);
  t.equal((await detect(runtime, 'demo-yolos', image(names[0]!), { threshold: 0 })).detections.length, 10);
});

t.test('stages are reported', async (t) => {
  t.ok(stages.some(([m, s]) => m === 'test-vit' && s === 'preprocess'));
  t.ok(stages.some(([m, s]) => m === 'test-vit' && s === 'postprocess'));
  t.ok(stages.some(([m, s]) => m === 'test-yolos' && s === 'preprocess'));
  t.ok(stages.some(([m, s]) => m === 'test-yolos' && s === 'postprocess'));
});

t.test('bad input is a TaskInputError naming the problem', async (t) => {
  const png = image(names[0]!);
  const rejects = (p: Promise<unknown>, message: RegExp, what: string) => t.rejects(p, { constructor: TaskInputError, code: 'BAD_INPUT', message }, what);

  await rejects(classify(runtime, 'test-vit', Buffer.from('definitely not an image'), {}), /cannot decode the image/, 'undecodable bytes');
  await rejects(classify(runtime, 'test-vit', Buffer.alloc(0), {}), /the image is empty/, 'empty body');
  await rejects(classify(runtime, 'test-vit', png.subarray(0, Math.floor(png.length / 2)), {}), /cannot decode the image/, 'truncated PNG');
  const jpg = image(names.find((n) => n.endsWith('.jpg'))!);
  await rejects(detect(runtime, 'test-yolos', jpg.subarray(0, Math.floor(jpg.length / 2)), {}), /cannot decode the image/, 'truncated JPEG');

  t.equal(DEFAULT_IMAGE_LIMITS.maxPixels, 40_000_000);
  const overLimit = (p: Promise<unknown>, limit: string, message: RegExp, what: string) => t.rejects(p, { constructor: LimitError, code: 'LIMIT_EXCEEDED', limit, status: 413, message }, what);
  await overLimit(classify(runtime, 'test-vit', pngHeader(8000, 6000), {}), 'MAX_IMAGE_PIXELS', /8000x6000 = 48000000 pixels, more than MAX_IMAGE_PIXELS \(40000000\)/, 'over 40 megapixels');
  const spec = imageSpec((await registry.find('test-vit')).manifest!);
  await overLimit(preprocessImage(png, spec, { maxBytes: 100, maxPixels: 1e9 }), 'MAX_IMAGE_BYTES', new RegExp(`${png.length} bytes, more than MAX_IMAGE_BYTES \\(100\\)`), 'byte limit');
  await overLimit(preprocessImage(png, spec, { maxBytes: 1e9, maxPixels: 100 }), 'MAX_IMAGE_PIXELS', /more than MAX_IMAGE_PIXELS \(100\)$/, 'pixel limit');
  const sliver = await sharp({ create: { width: 2000, height: 10, channels: 3, background: '#808080' } }).png().toBuffer();
  await rejects(detect(runtime, 'test-yolos', sliver, {}), /2000x10; its aspect ratio is too extreme/, 'YOLOS size rounds to 0');

  await rejects(classify(runtime, 'demo-embedder', png, {}), /'demo-embedder' is an? embedding model; this request is for image-classification/, 'wrong task');
  await rejects(detect(runtime, 'test-vit', png, {}), /image-classification model; this request is for object-detection/, 'classifier asked to detect');
  await rejects(classify(runtime, 'test-yolos', png, {}), /object-detection model; this request is for image-classification/, 'detector asked to classify');

  for (const topK of [0, -1, 6, 2.5, Number.NaN]) {
    await rejects(classify(runtime, 'test-vit', png, { topK }), /top_k must be an integer from 1 to the model's 5 labels/, `top_k ${topK}`);
  }
  for (const threshold of [-0.1, 1.5, Number.NaN, Infinity]) {
    await rejects(detect(runtime, 'test-yolos', png, { threshold }), /threshold must be a number from 0 to 1/, `threshold ${threshold}`);
  }
  t.equal((await detect(runtime, 'test-yolos', png, { threshold: 1 })).detections.length, 0, 'threshold 1 keeps nothing');
});
