// Thousands of forwards leave RSS flat: outputs handed to JS are freed with their arrays,
// inputs and per-call state are freed when the call settles. The addon's live-tensor counts
// (runtimeInfo().liveTensors, ...) say the same directly.
import t from 'tap';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { type TorchValue, TorchScriptModule, runtimeInfo, trimMemory, trimMemoryAsync } from '../../src/runtime/index.js';
import { pythonFixtures, readJson } from '../helpers/python-fixtures.js';
import { fromJson, type JsonTensor } from '../helpers/tensors.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const dir = pythonFixtures('test/fixtures/make_runtime_fixtures.py');
const cases = readJson<{ bert: { inputs: JsonTensor[] }[] }>(join(dir, 'cases.json'));

async function settle(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  trimMemory(); // free heap pages back to the OS, so RSS shows what is still in use
  return process.memoryUsage().rss;
}

t.test('RSS stays flat over thousands of forwards', async (t) => {
  const bert = await TorchScriptModule.load(join(dir, 'bert.pt'));
  const inputs = cases.bert.map((c) => c.inputs.map(fromJson));
  const round = async (count: number) => {
    for (let i = 0; i < count; i += 8) {
      await Promise.all(inputs.concat(inputs, inputs).slice(0, 8).map((x) => bert.forward(x)));
    }
  };
  // Warm-up: allocator arenas of each worker thread, the JIT's profiled plans.
  await round(3000);
  const before = await settle();
  await round(6000);
  const after = await settle();
  const growthMiB = (after - before) / 2 ** 20;
  // 6000 forwards return ~30 MiB of outputs in all: leaking them, or the inputs, or the
  // per-call state, would show here many times over.
  bert.dispose();
  t.ok(growthMiB < 6, `RSS grew ${growthMiB.toFixed(1)} MiB over 6000 forwards (${(before / 2 ** 20).toFixed(0)} -> ${(after / 2 ** 20).toFixed(0)} MiB)`);
});

t.test('loading and disposing modules repeatedly does not leak', async (t) => {
  const path = join(dir, 'bert.pt');
  const cycle = async () => {
    const m = await TorchScriptModule.load(path);
    await m.forward(cases.bert[0]!.inputs.map(fromJson));
    m.dispose();
  };
  await settle();
  const liveBefore = runtimeInfo().liveModules;
  for (let i = 0; i < 60; i++) await cycle();
  const before = await settle();
  for (let i = 0; i < 100; i++) await cycle();
  const after = await settle();
  t.equal(runtimeInfo().liveModules, liveBefore, `every disposed module was freed (${liveBefore} alive before and after)`);
  const growthMiB = (after - before) / 2 ** 20;
  // A module that is never freed costs ~2 MiB here (weights plus JIT state), so a leak would
  // add ~200 MiB.
  t.ok(growthMiB < 40, `RSS grew ${growthMiB.toFixed(1)} MiB over 100 load/forward/dispose cycles`);
});

/** Tensors (with data) and their bytes in a forward result, as the addon counts them. */
function countTensors(value: TorchValue): { tensors: number; bytes: number } {
  if (value === null || typeof value !== 'object') return { tensors: 0, bytes: 0 };
  const parts = Array.isArray(value) ? value : 'dtype' in value && 'data' in value ? null : Object.values(value);
  if (parts === null) {
    const bytes = (value as { data: ArrayBufferView }).data.byteLength;
    return { tensors: bytes > 0 ? 1 : 0, bytes };
  }
  return parts.map(countTensors).reduce((a, b) => ({ tensors: a.tensors + b.tensors, bytes: a.bytes + b.bytes }), { tensors: 0, bytes: 0 });
}

t.test('live tensor counts rise while outputs are held and return to the baseline after GC', async (t) => {
  const bert = await TorchScriptModule.load(join(dir, 'bert.pt'));
  const inputs = cases.bert.map((c) => c.inputs.map(fromJson));
  await bert.forward(inputs[0]!);
  await settle();
  const base = runtimeInfo();
  t.equal(base.liveInputTensors, 0, 'no input tensors alive with no forward in flight');

  // Hold 200 results: each of their tensors is counted until the arrays are dropped.
  const held: TorchValue[] = [];
  for (let i = 0; i < 200; i += 8) {
    held.push(...(await Promise.all(inputs.concat(inputs, inputs).slice(0, 8).map((x) => bert.forward(x)))));
  }
  const expected = held.map(countTensors).reduce((a, b) => ({ tensors: a.tensors + b.tensors, bytes: a.bytes + b.bytes }));
  t.ok(expected.tensors >= 200, `the held results have ${expected.tensors} tensors`);
  await settle();
  const holding = runtimeInfo();
  t.equal(holding.liveTensors - base.liveTensors, expected.tensors, 'every held output tensor is counted');
  t.equal(holding.liveTensorBytes - base.liveTensorBytes, expected.bytes, 'and its bytes');
  t.equal(holding.liveInputTensors, 0, 'the inputs of settled forwards are freed');
  t.equal(holding.liveInputTensorBytes, 0);

  // While forwards are in flight their inputs are alive; they are freed when the calls settle.
  {
    let pending: Promise<TorchValue>[] = inputs.concat(inputs, inputs).slice(0, 8).map((x) => bert.forward(x));
    const inFlight = runtimeInfo();
    t.ok(inFlight.liveInputTensors > 0 && inFlight.liveInputTensorBytes > 0, `inputs of forwards in flight are counted (${inFlight.liveInputTensors})`);
    await Promise.all(pending);
    pending = []; // settled promises keep their results alive
  }

  held.length = 0;
  // Many more forwards whose results are dropped at once.
  for (let i = 0; i < 2000; i += 8) {
    await Promise.all(inputs.concat(inputs, inputs).slice(0, 8).map((x) => bert.forward(x)));
  }
  await settle();
  const after = runtimeInfo();
  bert.dispose();
  t.equal(after.liveTensors, base.liveTensors, `live output tensors back to the baseline (${base.liveTensors})`);
  t.equal(after.liveTensorBytes, base.liveTensorBytes, 'live output bytes back to the baseline');
  t.equal(after.liveInputTensors, 0, 'no input tensors alive');
  t.equal(after.liveInputTensorBytes, 0);
});

t.test('trimMemoryAsync hands freed native memory back to the OS, off the event loop', async (t) => {
  const bert = await TorchScriptModule.load(join(dir, 'bert.pt'));
  const base = cases.bert[0]!.inputs.map(fromJson);
  // Large, varied activations, all freed once the calls settle: glibc keeps their pages.
  for (let rows = 8; rows <= 64; rows += 8) {
    const inputs = base.map((x) => ({ ...x, shape: [rows, x.shape[1]!], data: (x.data as BigInt64Array).constructor === BigInt64Array ? BigInt64Array.from({ length: rows * x.shape[1]! }, (_, i) => (x.data as BigInt64Array)[i % x.data.length]!) : x.data }));
    await bert.forward(inputs as never);
  }
  bert.dispose();
  for (let i = 0; i < 3; i++) gc();
  const before = process.memoryUsage().rss;
  const released = await trimMemoryAsync();
  const after = process.memoryUsage().rss;
  t.equal(released, true, 'malloc_trim released memory');
  t.ok(after < before, `RSS ${(before / 2 ** 20).toFixed(0)} -> ${(after / 2 ** 20).toFixed(0)} MiB`);
});
