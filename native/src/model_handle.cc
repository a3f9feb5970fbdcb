#include "model_handle.h"

#include <c10/core/InferenceMode.h>

#include <optional>

#ifdef ATENSPACE_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#endif

#include "addon.h"
#include "aoti_model.h"
#include "async_task.h"
#include "device.h"
#include "errors.h"
#include "intra_op_threads.h"
#include "tensor_codec.h"
#include "torchscript_model.h"

namespace atenspace {

namespace {

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

class LoadTask : public AsyncTask {
 public:
  LoadTask(Napi::Env env, std::string path, std::string device, std::string format, size_t runners)
      : AsyncTask(env, ErrorCode::kModelLoadFailed),
        path_(std::move(path)),
        requested_device_(std::move(device)),
        format_(std::move(format)),
        runners_(runners) {}

 protected:
  void Execute() override {
    if (format_ == "pt2") {
      loaded_ = AotiModel::Load(path_, requested_device_, runners_);
    } else {
      loaded_ = TorchScriptModel::Load(path_, ResolveDevice(requested_device_));
    }
  }

  Napi::Value Result(Napi::Env env) override {
    loaded_->Prepare(env);
    return ModelHandle::Wrap(env, std::move(loaded_));
  }

 private:
  std::string path_;
  std::string requested_device_;
  std::string format_;
  size_t runners_;
  std::shared_ptr<LoadedModel> loaded_;
};

class ForwardTask : public AsyncTask {
 public:
  ForwardTask(Napi::Env env, std::shared_ptr<LoadedModel> loaded, ForwardCall call, int threads)
      : AsyncTask(env, ErrorCode::kForwardFailed), loaded_(std::move(loaded)), call_(std::move(call)), threads_(threads) {}

 protected:
  void Execute() override {
    c10::InferenceMode inference;
    ScopedIntraOpThreads threads(threads_);
#ifdef ATENSPACE_WITH_CUDA
    std::optional<c10::cuda::CUDAStreamGuard> stream_guard;
    if (loaded_->device().is_cuda()) stream_guard.emplace(WorkerStream(loaded_->device().index()));
#endif
    c10::IValue output = loaded_->Run(std::move(call_));
    output_ = PrepareForJs(output);  // copies CUDA outputs to the host (synchronises the stream)
    call_ = ForwardCall();
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Value out = EncodeIValue(env, output_);
    output_ = c10::IValue();
    return out;
  }

 private:
  std::shared_ptr<LoadedModel> loaded_;
  ForwardCall call_;
  int threads_;
  c10::IValue output_;
};

}  // namespace

void ModelHandle::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function constructor = DefineClass(env, "ModelHandle",
                                           {
                                               InstanceMethod<&ModelHandle::Forward>("forward"),
                                               InstanceMethod<&ModelHandle::Schema>("schema"),
                                               InstanceMethod<&ModelHandle::Dispose>("dispose"),
                                               InstanceAccessor<&ModelHandle::Device>("device"),
                                               InstanceAccessor<&ModelHandle::Path>("path"),
                                               InstanceAccessor<&ModelHandle::Format>("format"),
                                               InstanceAccessor<&ModelHandle::Disposed>("disposed"),
                                           });
  Addon::Of(env).model_handle_constructor = Napi::Persistent(constructor);
  exports.Set("ModelHandle", constructor);

  // load(path, device, format?) -> Promise<ModelHandle>, on the worker pool. format is
  // "torchscript" or "pt2"; without it, a path ending in .pt2 is a package.
  exports.Set("load", Napi::Function::New(
                          env,
                          [](const Napi::CallbackInfo& info) -> Napi::Value {
                            Napi::Env env = info.Env();
                            if (info.Length() < 1 || !info[0].IsString()) {
                              ThrowJs(env, ErrorCode::kBadInput, "load(path, device, format) needs a path string");
                            }
                            const std::string path = info[0].As<Napi::String>().Utf8Value();
                            std::string device = "cpu";
                            if (info.Length() > 1 && !info[1].IsUndefined()) {
                              if (!info[1].IsString()) ThrowJs(env, ErrorCode::kBadInput, "device must be a string");
                              device = info[1].As<Napi::String>().Utf8Value();
                            }
                            std::string format = EndsWith(path, ".pt2") ? "pt2" : "torchscript";
                            if (info.Length() > 2 && !info[2].IsUndefined()) {
                              if (!info[2].IsString()) ThrowJs(env, ErrorCode::kBadInput, "format must be a string");
                              format = info[2].As<Napi::String>().Utf8Value();
                              if (format != "torchscript" && format != "pt2") {
                                ThrowJs(env, ErrorCode::kBadInput, "unknown model format '" + format + "' (expected torchscript or pt2)");
                              }
                            }
                            Addon& addon = Addon::Of(env);
                            auto task = std::make_unique<LoadTask>(env, path, device, format, addon.worker_count());
                            return addon.dispatcher().Dispatch(env, std::move(task));
                          },
                          "load"));
}

Napi::Object ModelHandle::Wrap(Napi::Env env, std::shared_ptr<LoadedModel> loaded) {
  auto* holder = new std::shared_ptr<LoadedModel>(std::move(loaded));
  Napi::External<std::shared_ptr<LoadedModel>> external = Napi::External<std::shared_ptr<LoadedModel>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<LoadedModel>* held) { delete held; });
  return Addon::Of(env).model_handle_constructor.New({external});
}

ModelHandle::ModelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    ThrowJs(info.Env(), ErrorCode::kBadInput, "ModelHandle cannot be constructed directly; use load()");
  }
  // Take the model out of the External: a copy left there would keep it alive until the
  // External is garbage-collected, so dispose() (and an unload) would free nothing until then.
  loaded_ = std::move(*info[0].As<Napi::External<std::shared_ptr<LoadedModel>>>().Data());
  if (!loaded_) ThrowJs(info.Env(), ErrorCode::kBadInput, "ModelHandle cannot be constructed directly; use load()");
  device_name_ = loaded_->device().str();
  path_ = loaded_->path();
  format_ = loaded_->format();
}

Napi::Value ModelHandle::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loaded_) ThrowJs(env, ErrorCode::kModelDisposed, "forward on a disposed module ('" + path_ + "')");
  ForwardCall call;
  int threads = 0;
  try {
    if (info.Length() > 2) {
      throw BindingError(ErrorCode::kBadInput,
                         "forward takes the inputs (an array of positional inputs or an object of named inputs) and options");
    }
    if (info.Length() == 2 && !info[1].IsUndefined()) {
      if (!info[1].IsObject()) throw BindingError(ErrorCode::kBadInput, "forward's options must be an object");
      const Napi::Value given = info[1].As<Napi::Object>().Get("threads");
      if (!given.IsUndefined()) {
        const double value = given.IsNumber() ? given.As<Napi::Number>().DoubleValue() : -1;
        if (!(value >= 1 && value <= 1024 && value == static_cast<int>(value))) {
          throw BindingError(ErrorCode::kBadInput, "forward's threads must be an integer from 1 to 1024");
        }
        threads = static_cast<int>(value);
      }
    }
    call = loaded_->Decode(info.Length() == 0 ? env.Undefined() : info[0]);
  } catch (const BindingError& e) {
    ThrowJs(env, e.code(), e.what());
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw ToJsError(env, DescribeCurrentException(ErrorCode::kBadInput));
  }
  auto task = std::make_unique<ForwardTask>(env, loaded_, std::move(call), threads);
  return Addon::Of(env).dispatcher().Dispatch(env, std::move(task));
}

Napi::Value ModelHandle::Schema(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loaded_) ThrowJs(env, ErrorCode::kModelDisposed, "schema of a disposed module ('" + path_ + "')");
  const Signature& signature = loaded_->signature();
  Napi::Object out = Napi::Object::New(env);
  out.Set("text", Napi::String::New(env, signature.text));
  Napi::Array arguments = Napi::Array::New(env, signature.arguments.size());
  for (size_t i = 0; i < signature.arguments.size(); ++i) {
    const auto& argument = signature.arguments[i];
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", Napi::String::New(env, argument.name));
    entry.Set("type", Napi::String::New(env, argument.type));
    entry.Set("hasDefault", Napi::Boolean::New(env, argument.has_default));
    arguments.Set(static_cast<uint32_t>(i), entry);
  }
  out.Set("arguments", arguments);
  Napi::Array returns = Napi::Array::New(env, signature.returns.size());
  for (size_t i = 0; i < signature.returns.size(); ++i) {
    returns.Set(static_cast<uint32_t>(i), Napi::String::New(env, signature.returns[i]));
  }
  out.Set("returns", returns);
  return out;
}

Napi::Value ModelHandle::Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_name_); }

Napi::Value ModelHandle::Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }

Napi::Value ModelHandle::Format(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), format_); }

Napi::Value ModelHandle::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !loaded_); }

Napi::Value ModelHandle::Dispose(const Napi::CallbackInfo& info) {
  loaded_.reset();
  return info.Env().Undefined();
}

}  // namespace atenspace
