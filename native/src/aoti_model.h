// The AOTInductor backend: a .pt2 package (torch.export compiled ahead of time by
// torch._inductor.aoti_compile_and_package), run by torch::inductor::AOTIModelPackageLoader.
//
// The package holds the compiled .so, so no compiler is needed to load it. AOTInductor runs a
// flat list of tensors and does not check shapes against the exported bounds (a sequence
// longer than the position embeddings reads past them), so the exporter writes the inputs'
// names, dtypes, bounds and shared dimensions into the package's metadata, and Decode checks
// every input against them before anything runs.
#pragma once

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "loaded_model.h"

namespace atenspace {

class AotiModel : public LoadedModel {
 public:
  // Worker thread. `runners`: forwards that may run at once (each has its own activations;
  // the weights are shared). Throws BindingError (MODEL_NOT_FOUND, MODEL_LOAD_FAILED,
  // CUDA_UNAVAILABLE, BAD_INPUT for a device name).
  static std::shared_ptr<AotiModel> Load(const std::string& path, const std::string& requested_device, size_t runners);

  AotiModel(std::string path, c10::Device device, std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader,
            std::unordered_map<std::string, std::string> metadata);

  const char* format() const override { return "pt2"; }
  const Signature& signature() const override { return signature_; }
  // JS thread: reads the package metadata (JSON, parsed by the JS engine).
  void Prepare(Napi::Env env) override;
  ForwardCall Decode(const Napi::Value& inputs) const override;
  c10::IValue Run(ForwardCall call) override;

 private:
  struct InputSpec {
    std::string name;
    at::ScalarType dtype = at::kFloat;
    std::string dtype_name;
    std::vector<int64_t> min_shape;
    std::vector<int64_t> max_shape;
    // Symbol of each dimension in the exported program ("" when static): dimensions with the
    // same symbol must be equal.
    std::vector<std::string> symbols;
  };

  void Check(const std::vector<at::Tensor>& tensors) const;

  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader_;
  std::unordered_map<std::string, std::string> metadata_;
  std::vector<InputSpec> inputs_;
  bool single_output_ = false;
  Signature signature_;
};

}  // namespace atenspace
