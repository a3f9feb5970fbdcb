#!/usr/bin/env bash
# CUDA build check (issue 21): compile, link and load the addon's CUDA branch on a machine
# without a GPU. The CPU LibTorch that `npm run setup` installs defines none of the CUDA code
# (ATENSPACE_WITH_CUDA: one stream per worker, device placement, the CUDA allocator's memory
# stats), so without this check that code is first compiled on the GPU machine.
#
#   bash scripts/cuda-build-check.sh          # or: npm run check:cuda
#   CUDA_BUILD_CHECK=1 npm test               # the same, as a tap test
#
# Steps:
#   1. pip installs the CUDA 13 build of torch (and the nvidia-* libraries libtorch_cuda.so
#      links against) into its own prefix, $CUDA_CHECK_DIR/site (default
#      ~/.cache/atenspace/cuda-torch/site) with `pip install --target --no-deps`. python3's
#      own (CPU) torch is never touched; the prefix is only read as a LibTorch ($LIBTORCH).
#      Once installed it is reused (delete the folder to reinstall).
#   2. node-gyp builds native/ against that LibTorch into native/build-cuda/ (never
#      native/build/, the CPU addon everything else uses) with the CUDA branch on, CUDA headers
#      from $CUDA_HOME (default /usr/local/cuda-13.0), and -Werror for our sources (LibTorch's
#      and CUDA's headers are system headers there, so their warnings do not count).
#   3. node loads the result on this CPU-only machine (no libcuda: CUDA must be reported as
#      unavailable, not crash), checks runtime info, that asking for cuda is refused with
#      CUDA_UNAVAILABLE, and that a CPU forward of a small TorchScript returns known values.
#
# Cost (measured on the 2-core dev machine, see bench/RESULTS.md "CUDA build check (issue 21)"):
# 4.3 GB in $CUDA_CHECK_DIR (torch 2.14.1+cu130 and its nvidia-* libraries), about 30 s to
# install from the local wheel mirror, 50-80 s to build; 1.5 min cold, about 1 min warm, 1.2 GB
# peak memory (one compiler). Heavy steps run under `nice -n 19`.
#
# Environment: CUDA_CHECK_DIR, CUDA_HOME, CUDA_TORCH_VERSION (default 2.14.1), JOBS,
# npm_config_nodedir, PIP_EXTRA (extra pip arguments, e.g. an --index-url),
# CUDA_CHECK_ALLOW_GPU=1 (on a machine with a GPU: skip the "CUDA is unavailable" checks).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CUDA_CHECK_DIR="${CUDA_CHECK_DIR:-$HOME/.cache/atenspace/cuda-torch}"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda-13.0}"
VERSION="${CUDA_TORCH_VERSION:-2.14.1}"
JOBS="${JOBS:-$(nproc)}"
BUILD="$ROOT/native/build-cuda"
SITE="$CUDA_CHECK_DIR/site"
NICE=(nice -n 19)
say() { printf '\n== %s\n' "$*"; }
die() { printf 'cuda-build-check: %s\n' "$*" >&2; exit 1; }
START=$(date +%s)

# The nvidia-* wheels libtorch_cuda.so needs at run time (torch's own pins for CUDA 13; the
# Python-only requirements, triton and cuda-bindings, are not needed by LibTorch).
NVIDIA_WHEELS=(
  nvidia-cuda-runtime==13.0.96 nvidia-cublas==13.1.1.3 nvidia-cuda-nvrtc==13.0.88 "nvidia-nvjitlink>=13.0.88,<14"
  nvidia-cufft==12.0.0.61 nvidia-cusparse==12.6.3.3 nvidia-cusolver==12.0.4.66 nvidia-curand==10.4.0.35
  nvidia-nvtx==13.0.85 nvidia-cufile==1.15.1.6 nvidia-cuda-cupti==13.0.85 nvidia-cudnn-cu13==9.24.0.43
  nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 nvidia-nvshmem-cu13==3.4.5
)

say "1/3 CUDA torch $VERSION in $SITE"
[ -f "$CUDA_HOME/include/cuda_runtime_api.h" ] || die "no CUDA headers under $CUDA_HOME/include (set CUDA_HOME)"
installed=""
[ -f "$SITE/torch/version.py" ] && installed=$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$SITE/torch/version.py")
if [ "${installed%%+*}" != "$VERSION" ]; then
  rm -rf "$SITE" "$SITE.partial"
  mkdir -p "$CUDA_CHECK_DIR"
  t0=$(date +%s)
  # shellcheck disable=SC2086
  "${NICE[@]}" python3 -m pip install --retries 0 --timeout 5 --no-input --disable-pip-version-check --no-deps \
    --no-compile --target "$SITE.partial" ${PIP_EXTRA:-} "torch==$VERSION" "${NVIDIA_WHEELS[@]}" \
    >"$CUDA_CHECK_DIR/install.log" 2>&1 || { tail -n 20 "$CUDA_CHECK_DIR/install.log" >&2; die "pip install failed (log: $CUDA_CHECK_DIR/install.log)"; }
  mv "$SITE.partial" "$SITE"
  echo "installed in $(( $(date +%s) - t0 ))s"
else
  echo "already installed ($installed)"
fi
TORCH_DIR="$SITE/torch"
[ -f "$TORCH_DIR/lib/libtorch_cuda.so" ] || die "$TORCH_DIR/lib has no libtorch_cuda.so: not a CUDA build of torch"
echo "disk: $(du -sh "$SITE" | cut -f1) in $SITE"

say "2/3 build native/ against it into native/build-cuda (CUDA branch on, -Werror)"
NODEDIR="${npm_config_nodedir:-$(dirname "$(dirname "$(node -p process.execPath)")")}"
[ -f "$NODEDIR/include/node/node_api.h" ] || die "Node headers not found under $NODEDIR/include/node; set npm_config_nodedir"
# node-gyp writes build/ next to binding.gyp, so build from a folder that holds a copy of
# binding.gyp and links to the real sources.
mkdir -p "$BUILD"
cp native/binding.gyp "$BUILD/binding.gyp"
ln -sfn ../src "$BUILD/src"
ln -sfn ../scripts "$BUILD/scripts"
export LIBTORCH="$TORCH_DIR" CUDA_HOME
(cd "$BUILD" && python3 scripts/libtorch.py summary)
[ "$(cd "$BUILD" && python3 scripts/libtorch.py cuda)" = 1 ] || die "libtorch.py does not see CUDA in $TORCH_DIR"
t0=$(date +%s)
(cd "$BUILD" && GYP_DEFINES="werror=1" "${NICE[@]}" "$ROOT/node_modules/.bin/node-gyp" rebuild --nodedir="$NODEDIR" --jobs "$JOBS" \
  >"$BUILD/build.log" 2>&1) || { grep -E 'error|warning' "$BUILD/build.log" | head -n 60 >&2; tail -n 20 "$BUILD/build.log" >&2; die "the CUDA build failed (full log: native/build-cuda/build.log)"; }
ADDON="$BUILD/build/Release/atenspace.node"
echo "built $ADDON in $(( $(date +%s) - t0 ))s"
grep -q -- '-DATENSPACE_WITH_CUDA=1' "$BUILD"/build/atenspace.target.mk || die "the build did not define ATENSPACE_WITH_CUDA"
grep -q -- '-Werror' "$BUILD"/build/atenspace.target.mk || die "the build did not use -Werror"
if grep -E '^\.\./src/.*warning' "$BUILD/build.log"; then die "warnings in our sources"; fi
ldd "$ADDON" | grep -E 'torch_cuda|c10_cuda' || die "the addon does not link libtorch_cuda / libc10_cuda"

say "3/3 load it in node on this machine and run a CPU forward"
FIXTURE="$BUILD/fixture"
mkdir -p "$FIXTURE"
# A TorchScript made by python3's (CPU) torch: forward(x) = x * 2 + 1.
# (A file, not stdin: torch.jit.script reads the module's source.)
cat >"$FIXTURE/make_affine.py" <<'PY'
import sys, torch
class Affine(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 + 1
torch.jit.save(torch.jit.script(Affine()), sys.argv[1])
PY
python3 "$FIXTURE/make_affine.py" "$FIXTURE/affine.pt"
node - "$ADDON" "$FIXTURE/affine.pt" <<'JS'
const [addonPath, modelPath] = process.argv.slice(2);
const assert = require('node:assert/strict');
const addon = require(addonPath);
(async () => {
  const info = addon.info();
  console.log(JSON.stringify({ libtorch: info.libtorch, cudaBuilt: info.cudaBuilt, cudaAvailable: info.cudaAvailable,
    cudaDeviceCount: info.cudaDeviceCount }));
  assert.equal(info.cudaBuilt, true, 'built with the CUDA branch');
  if (!process.env.CUDA_CHECK_ALLOW_GPU) {
    assert.equal(info.cudaAvailable, false, 'no GPU here: CUDA must be reported unavailable');
    assert.equal(info.cudaDeviceCount, 0);
    assert.equal(addon.cudaMemory(0), null, 'cudaMemory without a device is null');
    await assert.rejects(addon.load(modelPath, 'cuda'), (e) => {
      assert.equal(e.code, 'CUDA_UNAVAILABLE');
      assert.match(e.message, /no CUDA device or driver found/, 'the CUDA-built message');
      return true;
    });
    const auto = await addon.load(modelPath, 'auto');
    assert.equal(auto.device, 'cpu', 'auto falls back to the CPU');
    auto.dispose();
  }
  const m = await addon.load(modelPath, 'cpu');
  const out = await m.forward([{ dtype: 'float32', shape: [2, 2], data: new Float32Array([0, 1, -2, 3.5]) }]);
  assert.equal(out.dtype, 'float32');
  assert.deepEqual([...out.shape], [2, 2]);
  assert.deepEqual([...out.data], [1, 3, -3, 8], 'x * 2 + 1');
  m.dispose();
  console.log('CPU forward: [0, 1, -2, 3.5] * 2 + 1 =', JSON.stringify([...out.data]));
})().catch((e) => { console.error(e); process.exit(1); });
JS
echo "cuda-build-check: OK (torch $VERSION, CUDA branch compiled, linked and loaded) in $(( $(date +%s) - START ))s"
