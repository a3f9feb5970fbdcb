// A loaded TorchScript module, as the JS class ScriptModule.
//
// Per-model state (the module and its device) lives in LoadedModule, shared by every
// forward in flight; per-call state lives in the ForwardTask. dispose() drops the JS
// handle's share, and the module is freed once the last forward using it finishes.
#pragma once

#include <napi.h>
#include <torch/script.h>

#include <memory>
#include <string>

namespace atenspace {

struct LoadedModule {
  LoadedModule();
  ~LoadedModule();
  LoadedModule(const LoadedModule&) = delete;
  LoadedModule& operator=(const LoadedModule&) = delete;

  // Modules alive in this process (loaded and not yet freed): what a leak would raise.
  static int64_t LiveCount();

  torch::jit::Module module;
  c10::Device device = c10::Device(c10::kCPU);
  std::string path;
};

class ScriptModule : public Napi::ObjectWrap<ScriptModule> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<LoadedModule> loaded);

  explicit ScriptModule(const Napi::CallbackInfo& info);

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Schema(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Path(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<LoadedModule> loaded_;
  std::string device_name_;
  std::string path_;
};

}  // namespace atenspace
