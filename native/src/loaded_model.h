// A model loaded by one of the backends (TorchScript, AOTInductor .pt2), as the JS handle sees it.
//
// Per-model state lives in the LoadedModel, shared by every forward in flight; the JS handle
// (model_handle.h) holds one share, and the model is freed once the last forward using it
// finishes. Decode runs on the JS thread (JS values -> tensors, checked against the model's
// signature); Run runs on a worker thread.
#pragma once

#include <ATen/core/ivalue.h>
#include <c10/core/Device.h>
#include <napi.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace atenspace {

// One forward's inputs: positional, and (TorchScript only) named.
struct ForwardCall {
  std::vector<c10::IValue> args;
  std::unordered_map<std::string, c10::IValue> kwargs;
};

// The forward signature in plain data (what schema() returns to JS).
struct Signature {
  struct Argument {
    std::string name;
    std::string type;
    bool has_default = false;
  };
  std::string text;
  std::vector<Argument> arguments;
  std::vector<std::string> returns;
};

class LoadedModel {
 public:
  LoadedModel(std::string path, c10::Device device);
  virtual ~LoadedModel();
  LoadedModel(const LoadedModel&) = delete;
  LoadedModel& operator=(const LoadedModel&) = delete;

  // Models alive in this process (loaded and not yet freed): what a leak would raise.
  static int64_t LiveCount();

  const std::string& path() const { return path_; }
  const c10::Device& device() const { return device_; }
  // "torchscript" or "pt2".
  virtual const char* format() const = 0;
  virtual const Signature& signature() const = 0;

  // JS thread, once, before the JS handle is made: finish loading with the JS engine's help.
  // Throws BindingError(MODEL_LOAD_FAILED).
  virtual void Prepare(Napi::Env /*env*/) {}
  // JS thread: `inputs` is an array of positional inputs, an object of named inputs, or
  // undefined. Throws BindingError(BAD_INPUT) naming the input on anything that does not fit.
  virtual ForwardCall Decode(const Napi::Value& inputs) const = 0;
  // Worker thread, under InferenceMode (on the worker's stream for CUDA): the outputs, on the
  // model's device.
  virtual c10::IValue Run(ForwardCall call) = 0;

 private:
  std::string path_;
  c10::Device device_;
};

}  // namespace atenspace
