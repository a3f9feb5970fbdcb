// The JS class ModelHandle: one loaded model of either backend (TorchScript or an
// AOTInductor .pt2 package) behind the same surface: forward (on the worker pool), schema,
// device, path, format, dispose. load(path, device, format) picks the backend.
//
// dispose() drops the JS handle's share of the LoadedModel; the model is freed once the last
// forward using it finishes.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "loaded_model.h"

namespace atenspace {

class ModelHandle : public Napi::ObjectWrap<ModelHandle> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<LoadedModel> loaded);

  explicit ModelHandle(const Napi::CallbackInfo& info);

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Schema(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Path(const Napi::CallbackInfo& info);
  Napi::Value Format(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<LoadedModel> loaded_;
  std::string device_name_;
  std::string path_;
  std::string format_;
};

}  // namespace atenspace
