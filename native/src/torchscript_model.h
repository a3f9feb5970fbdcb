// The TorchScript backend: a module saved by torch.jit.save, loaded with torch::jit::load.
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>

#include "loaded_model.h"

namespace atenspace {

class TorchScriptModel : public LoadedModel {
 public:
  // Worker thread. Throws BindingError (MODEL_NOT_FOUND, MODEL_LOAD_FAILED, OUT_OF_MEMORY).
  static std::shared_ptr<TorchScriptModel> Load(const std::string& path, c10::Device device);

  TorchScriptModel(std::string path, c10::Device device, torch::jit::Module module);

  const char* format() const override { return "torchscript"; }
  const Signature& signature() const override { return signature_; }
  ForwardCall Decode(const Napi::Value& inputs) const override;
  c10::IValue Run(ForwardCall call) override;

 private:
  const c10::FunctionSchema& schema() const;

  torch::jit::Module module_;
  Signature signature_;
};

}  // namespace atenspace
