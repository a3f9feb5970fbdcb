// Thousands of forwards leave RSS flat: outputs handed to JS are freed with their arrays,
// inputs and per-call state are freed when the call settles.
import t from 'tap';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { TorchScriptModule, runtimeInfo, trimMemory } from '../../src/runtime/index.js';
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
