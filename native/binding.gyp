{
  "variables": {
    "torch_include%": "<!(python3 scripts/libtorch.py include)",
    "torch_lib%": "<!(python3 scripts/libtorch.py lib)",
    "torch_abi%": "<!(python3 scripts/libtorch.py abi)",
    "with_cuda%": "<!(python3 scripts/libtorch.py cuda)",
    "cuda_include%": "<!(python3 scripts/libtorch.py cuda_include)",
    "werror%": 0
  },
  "targets": [
    {
      "target_name": "atenspace",
      "sources": [
        "src/addon.cc",
        "src/async_task.cc",
        "src/errors.cc",
        "src/worker_pool.cc",
        "src/tensor_codec.cc",
        "src/device.cc",
        "src/loaded_model.cc",
        "src/torchscript_model.cc",
        "src/aoti_model.cc",
        "src/model_handle.cc",
        "src/intra_op_threads.cc",
        "src/runtime_info.cc",
        "src/similarity.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<(torch_include)",
        "<(torch_include)/torch/csrc/api/include"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS",
        "_GLIBCXX_USE_CXX11_ABI=<(torch_abi)"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": [
        "-L<(torch_lib)",
        "-Wl,-rpath,<(torch_lib)",
        "-Wl,--no-as-needed",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10"
      ],
      "conditions": [
        ["with_cuda==1", {
          "defines": ["ATENSPACE_WITH_CUDA=1"],
          "include_dirs": ["<(cuda_include)"],
          "libraries": ["-ltorch_cuda", "-lc10_cuda"]
        }],
        ["werror==1", {
          "cflags_cc": [
            "-Werror",
            "-isystem<(torch_include)",
            "-isystem<(torch_include)/torch/csrc/api/include"
          ]
        }],
        ["werror==1 and with_cuda==1", {
          "cflags_cc": ["-isystem<(cuda_include)"]
        }]
      ]
    }
  ]
}
