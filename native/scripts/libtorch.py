#!/usr/bin/env python3
"""Locate the LibTorch that the native addon builds against.

Either the directory named by $LIBTORCH (an unpacked LibTorch distribution, a
CUDA LibTorch, a Docker image's copy) or the LibTorch inside the Python `torch`
package that `python3` imports. Prints one value, chosen by the first argument,
for binding.gyp's command expansion:

    root | include | lib | abi | cuda | cuda_include | version | summary
"""
import json
import os
import sys


def fail(msg: str) -> None:
    sys.stderr.write(f"libtorch: {msg}\n")
    sys.exit(1)


def from_env(root: str) -> dict:
    root = os.path.abspath(root)
    include = os.path.join(root, "include")
    lib = os.path.join(root, "lib")
    if not os.path.isdir(include) or not os.path.isdir(lib):
        fail(f"LIBTORCH={root} has no include/ and lib/ directories")
    version = "unknown"
    vfile = os.path.join(root, "build-version")
    if os.path.exists(vfile):
        version = open(vfile).read().strip()
    elif os.path.exists(os.path.join(root, "version.py")):  # the torch folder of a wheel
        for line in open(os.path.join(root, "version.py")):
            if line.startswith("__version__"):
                version = line.split("=", 1)[1].strip().strip("'\"")
    abi = 1
    # LibTorch ships the pre-cxx11 ABI only when its archive says so.
    if "pre-cxx11" in root or "precxx11" in root:
        abi = 0
    if os.environ.get("LIBTORCH_CXX11_ABI") in ("0", "1"):
        abi = int(os.environ["LIBTORCH_CXX11_ABI"])
    cuda = any(n.startswith("libtorch_cuda") for n in os.listdir(lib))
    return {"root": root, "include": include, "lib": lib, "abi": abi, "cuda": cuda, "version": version,
            "origin": "LIBTORCH"}


def from_python() -> dict:
    try:
        import torch  # noqa: F401
    except ImportError as exc:  # pragma: no cover - message only
        fail(f"python3 cannot import torch ({exc}); run `npm run setup` or set LIBTORCH=/path/to/libtorch")
    import torch
    root = os.path.dirname(torch.__file__)
    lib = os.path.join(root, "lib")
    cuda = any(n.startswith("libtorch_cuda") for n in os.listdir(lib))
    return {"root": root, "include": os.path.join(root, "include"), "lib": lib,
            "abi": int(torch._C._GLIBCXX_USE_CXX11_ABI), "cuda": cuda, "version": torch.__version__,
            "origin": "python3 torch"}


def cuda_include() -> str:
    """Directory holding cuda_runtime_api.h (needed by c10/cuda headers)."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    for base in filter(None, candidates):
        inc = os.path.join(base, "include")
        if os.path.exists(os.path.join(inc, "cuda_runtime_api.h")):
            return inc
    try:  # pip's nvidia-cuda-runtime wheel
        import nvidia.cuda_runtime as rt  # type: ignore
        inc = os.path.join(list(rt.__path__)[0], "include")
        if os.path.exists(os.path.join(inc, "cuda_runtime_api.h")):
            return inc
    except ImportError:
        pass
    fail("LibTorch has CUDA but no CUDA headers were found: set CUDA_HOME")
    return ""


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "summary"
    info = from_env(os.environ["LIBTORCH"]) if os.environ.get("LIBTORCH") else from_python()
    if what == "cuda_include":
        print(cuda_include() if info["cuda"] else "")
        return
    if what == "summary":
        print(json.dumps(info))
    elif what in ("abi", "cuda"):
        print(int(info[what]))
    elif what in info:
        print(info[what])
    else:
        fail(f"unknown query {what!r}")


if __name__ == "__main__":
    main()
