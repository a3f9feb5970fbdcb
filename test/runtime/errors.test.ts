// Every failure reaches JS as a typed error with a code and a readable message; none
// crashes the process or leaks a C++ backtrace.
import t, { type Test } from 'tap';
import { join } from 'node:path';

import {
  BadInputError,
  CudaUnavailableError,
  ForwardError,
  ModelDisposedError,
  ModelLoadError,
  ModelFileNotFoundError,
  type Tensor,
  TorchRuntimeError,
  TorchScriptModule,
  runtimeInfo,
  tensor,
  zeros,
} from '../../src/runtime/index.js';
import { pythonFixtures } from '../helpers/python-fixtures.js';

const dir = pythonFixtures('test/fixtures/make_runtime_fixtures.py');

function noBacktrace(t: Test, error: unknown): void {
  const message = (error as Error).message;
  t.notMatch(message, /frame #\d|Exception raised from|\.cpp:\d+/, 'no C++ backtrace in the message');
}

async function rejection(t: Test, promise: Promise<unknown>, ErrorClass: Function, code: string, message: RegExp) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(error instanceof ErrorClass, `rejects with ${ErrorClass.name}`);
  t.ok(error instanceof TorchRuntimeError, 'is a TorchRuntimeError');
  t.equal((error as TorchRuntimeError).code, code, `code ${code}`);
  t.match((error as Error).message, message);
  noBacktrace(t, error);
}

t.test('loading', async (t) => {
  await rejection(t, TorchScriptModule.load(join(dir, 'missing.pt')), ModelFileNotFoundError, 'MODEL_FILE_NOT_FOUND', /no TorchScript file/);
  await rejection(t, TorchScriptModule.load(join(dir, 'corrupt.pt')), ModelLoadError, 'MODEL_LOAD_FAILED', /cannot load .*corrupt\.pt/);
  await rejection(t, TorchScriptModule.load(dir), ModelFileNotFoundError, 'MODEL_FILE_NOT_FOUND', /no TorchScript file/);
  await rejection(t, TorchScriptModule.load(join(dir, 'flip.pt'), { device: 'tpu' }), BadInputError, 'BAD_INPUT', /unknown device 'tpu'/);
  await rejection(t, TorchScriptModule.load(join(dir, 'flip.pt'), { device: 'cuda:x' }), BadInputError, 'BAD_INPUT', /unknown device/);
  const auto = await TorchScriptModule.load(join(dir, 'flip.pt'), { device: 'auto' });
  t.equal(auto.device, runtimeInfo().cudaAvailable ? 'cuda:0' : 'cpu', 'auto picks CUDA only when available');
});

t.test('CUDA requested where there is none', { skip: runtimeInfo().cudaAvailable && 'this machine has CUDA' }, async (t) => {
  for (const device of ['cuda', 'cuda:0', 'cuda:3']) {
    await rejection(t, TorchScriptModule.load(join(dir, 'flip.pt'), { device }), CudaUnavailableError, 'CUDA_UNAVAILABLE', /CUDA is not available/);
  }
});

t.test('CUDA device index past the last device', { skip: !runtimeInfo().cudaAvailable && 'no CUDA here' }, async (t) => {
  await rejection(t, TorchScriptModule.load(join(dir, 'flip.pt'), { device: 'cuda:99' }), CudaUnavailableError, 'CUDA_UNAVAILABLE', /only \d+ CUDA device/);
});

t.test('malformed inputs are BAD_INPUT and name the input', async (t) => {
  const m = await TorchScriptModule.load(join(dir, 'multi_output.pt'));
  const x = tensor('float32', [2, 4], new Array(8).fill(1));
  const ids = tensor('int64', [2, 3], [1, 2, 3, 4, 5, 6]);
  const bad = (inputs: unknown) => m.forward(inputs as Tensor[]);
  await rejection(t, bad([{ dtype: 'float128', shape: [1], data: new Float32Array(1) }, ids]), BadInputError, 'BAD_INPUT', /input 0 \('x'\): unknown dtype 'float128'/);
  await rejection(t, bad([{ dtype: 'float32', shape: [2, 4], data: new Float64Array(8) }, ids]), BadInputError, 'BAD_INPUT', /needs a Float32Array, got a Float64Array/);
  await rejection(t, bad([{ dtype: 'float32', shape: [2, 4], data: new Float32Array(7) }, ids]), BadInputError, 'BAD_INPUT', /shape \[2, 4\] needs 8 elements, data has 7/);
  await rejection(t, bad([{ dtype: 'float32', shape: [2, -4], data: new Float32Array(8) }, ids]), BadInputError, 'BAD_INPUT', /shape\[1\] must be a non-negative integer/);
  await rejection(t, bad([{ dtype: 'float32', shape: [2.5], data: new Float32Array(2) }, ids]), BadInputError, 'BAD_INPUT', /shape\[0\] must be a non-negative integer/);
  await rejection(t, bad([{ dtype: 'int64', shape: [2], data: [1, 2] }, ids]), BadInputError, 'BAD_INPUT', /data must be a BigInt64Array/);
  await rejection(t, bad([x]), BadInputError, 'BAD_INPUT', /missing value for argument 'ids'/);
  await rejection(t, bad([x, ids, 1, 2]), BadInputError, 'BAD_INPUT', /takes 3 input\(s\), got 4/);
  await rejection(t, bad([x, ids, 'two']), BadInputError, 'BAD_INPUT', /input 2 \('scale'\): expected a number/);
  await rejection(t, bad([3, ids]), BadInputError, 'BAD_INPUT', /input 0 \('x'\): expected a tensor/);
  await rejection(t, bad({ x, idz: ids }), BadInputError, 'BAD_INPUT', /no input named 'idz' \(inputs: x, ids, scale\)/);
  await rejection(t, bad('x'), BadInputError, 'BAD_INPUT', /array of positional inputs or an object of named inputs/);
  // After all that the module still works.
  const out = (await m.forward([x, ids])) as [Tensor, unknown, unknown];
  t.same(out[0].shape, [2, 3], 'module still serves after bad inputs');
});

t.test('wrong rank, dtype or shape inside forward is FORWARD_FAILED, not a crash', async (t) => {
  const m = await TorchScriptModule.load(join(dir, 'multi_output.pt'));
  const ids = tensor('int64', [2, 3], [1, 2, 3, 4, 5, 6]);
  await rejection(t, m.forward([zeros('float32', [2, 5]), ids]), ForwardError, 'FORWARD_FAILED', /mat1 and mat2 shapes cannot be multiplied \(2x5 and 4x3\)/);
  await rejection(t, m.forward([zeros('float32', [2, 2, 2, 5]), ids]), ForwardError, 'FORWARD_FAILED', /cannot be multiplied/);
  await rejection(t, m.forward([zeros('int32', [2, 4]), ids]), ForwardError, 'FORWARD_FAILED', /dtype|type/i);
  const bert = await TorchScriptModule.load(join(dir, 'bert.pt'));
  const failure = await bert
    .forward([zeros('float32', [1, 4]), zeros('int64', [1, 4]), zeros('int64', [1, 4])])
    .catch((e: unknown) => e as TorchRuntimeError);
  t.ok(failure instanceof ForwardError, 'float ids into an embedding fail as FORWARD_FAILED');
  t.match((failure as TorchRuntimeError).detail ?? '', /Traceback of TorchScript|forward/, 'the TorchScript traceback is kept in detail');
  const ok = await m.forward([zeros('float32', [2, 4]), ids]);
  t.ok(Array.isArray(ok), 'module still serves after a failed forward');
});

t.test('a disposed module refuses work; forwards already queued finish', async (t) => {
  const m = await TorchScriptModule.load(join(dir, 'flip.pt'));
  const inFlight = m.forward([tensor('float32', [2], [1, 2])]);
  m.dispose();
  t.equal(m.disposed, true);
  t.same(Array.from(((await inFlight) as Tensor).data as Float32Array), [2, 1], 'in-flight forward completed');
  await rejection(t, m.forward([tensor('float32', [1], [1])]), ModelDisposedError, 'MODEL_DISPOSED', /disposed module/);
});
