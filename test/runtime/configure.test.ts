// Thread counts are settable once, before the runtime starts, and reported by info.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { RuntimeStartedError, TorchScriptModule, configureRuntime, runtimeInfo, BadInputError } from '../../src/runtime/index.js';
import { pythonFixtures } from '../helpers/python-fixtures.js';

const dir = pythonFixtures('test/fixtures/make_runtime_fixtures.py');

t.test('runtime info reports the LibTorch that python3 has', async (t) => {
  const info = runtimeInfo();
  const pythonTorch = execFileSync('python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
  t.equal(info.libtorch, pythonTorch.split('+')[0], 'LibTorch version equals python3 torch');
  t.equal(typeof info.cudaAvailable, 'boolean');
  t.equal(info.cudaAvailable ? info.cudaDeviceCount > 0 : info.cudaDeviceCount === 0, true);
  t.equal(info.started, false);
});

t.test('configure before start, refused after', async (t) => {
  t.throws(() => configureRuntime({ workers: 0 }), BadInputError, 'workers must be positive');
  const info = configureRuntime({ workers: 3, intraOpThreads: 1 });
  t.equal(info.workerThreads, 3);
  t.equal(info.intraOpThreads, 1);
  const m = await TorchScriptModule.load(join(dir, 'flip.pt'));
  t.equal(runtimeInfo().started, true);
  t.equal(runtimeInfo().workerThreads, 3);
  const error = (() => {
    try {
      configureRuntime({ workers: 2 });
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(error instanceof RuntimeStartedError, 'configure after start is refused');
  t.equal((error as RuntimeStartedError).code, 'RUNTIME_STARTED');
  m.dispose();
});
