#include "script_module.h"

#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>

#include <atomic>
#include <filesystem>
#include <unordered_map>

#ifdef ATENSPACE_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "addon.h"
#include "async_task.h"
#include "errors.h"
#include "tensor_codec.h"

namespace atenspace {

namespace {
std::atomic<int64_t> live_modules{0};
}  // namespace

LoadedModule::LoadedModule() { live_modules.fetch_add(1); }
LoadedModule::~LoadedModule() { live_modules.fetch_sub(1); }
int64_t LoadedModule::LiveCount() { return live_modules.load(); }

namespace {

[[noreturn]] void Bad(const std::string& message) { throw BindingError(ErrorCode::kBadInput, message); }

// "cpu" | "cuda" | "cuda:N" | "auto" -> a device this process can use.
c10::Device ResolveDevice(const std::string& requested) {
  const bool cuda = torch::cuda::is_available();
  if (requested == "auto") return cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (requested != "cpu" && requested != "cuda" && requested.rfind("cuda:", 0) != 0) {
    Bad("unknown device '" + requested + "' (expected cpu, cuda, cuda:N or auto)");
  }
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(requested);
  } catch (...) {
    Bad("unknown device '" + requested + "' (expected cpu, cuda, cuda:N or auto)");
  }
  if (device.is_cuda()) {
    if (!cuda) {
      throw BindingError(ErrorCode::kCudaUnavailable,
                         "device '" + requested + "' requested but CUDA is not available" +
#ifdef ATENSPACE_WITH_CUDA
                             std::string(" (no CUDA device or driver found)")
#else
                             std::string(" (this addon was built against a CPU-only LibTorch)")
#endif
      );
    }
    if (!device.has_index()) device.set_index(0);
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (device.index() >= count) {
      throw BindingError(ErrorCode::kCudaUnavailable, "device '" + requested + "' requested but only " +
                                                          std::to_string(count) + " CUDA device(s) exist");
    }
  }
  return device;
}

std::string DeviceName(const c10::Device& device) { return device.str(); }

const c10::FunctionSchema& ForwardSchema(const LoadedModule& loaded) {
  return loaded.module.get_method("forward").function().getSchema();
}

#ifdef ATENSPACE_WITH_CUDA
// One stream per worker thread and device, so concurrent forwards do not serialise on the
// default stream.
c10::cuda::CUDAStream WorkerStream(c10::DeviceIndex index) {
  thread_local std::unordered_map<int, c10::cuda::CUDAStream> streams;
  auto found = streams.find(index);
  if (found == streams.end()) {
    found = streams.emplace(index, c10::cuda::getStreamFromPool(false, index)).first;
  }
  return found->second;
}
#endif

class LoadTask : public AsyncTask {
 public:
  LoadTask(Napi::Env env, std::string path, std::string device)
      : AsyncTask(env, ErrorCode::kModelLoadFailed), path_(std::move(path)), requested_device_(std::move(device)) {}

 protected:
  void Execute() override {
    const c10::Device device = ResolveDevice(requested_device_);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path_, ec)) {
      throw BindingError(ErrorCode::kModelNotFound, "no TorchScript file at '" + path_ + "'");
    }
    auto loaded = std::make_shared<LoadedModule>();
    loaded->path = path_;
    loaded->device = device;
    try {
      loaded->module = torch::jit::load(path_, device);
    } catch (...) {
      ErrorInfo error = DescribeCurrentException(ErrorCode::kModelLoadFailed);
      if (error.code != ErrorCode::kOutOfMemory) error.code = ErrorCode::kModelLoadFailed;
      error.message = "cannot load '" + path_ + "' as TorchScript: " + error.message;
      throw BindingError(error.code, error.message);
    }
    loaded->module.eval();
    if (!loaded->module.find_method("forward")) {
      throw BindingError(ErrorCode::kModelLoadFailed, "'" + path_ + "' has no forward method");
    }
    loaded_ = std::move(loaded);
  }

  Napi::Value Result(Napi::Env env) override { return ScriptModule::Wrap(env, std::move(loaded_)); }

 private:
  std::string path_;
  std::string requested_device_;
  std::shared_ptr<LoadedModule> loaded_;
};

class ForwardTask : public AsyncTask {
 public:
  ForwardTask(Napi::Env env, std::shared_ptr<LoadedModule> loaded, std::vector<c10::IValue> args,
              torch::jit::Kwargs kwargs)
      : AsyncTask(env, ErrorCode::kForwardFailed),
        loaded_(std::move(loaded)),
        args_(std::move(args)),
        kwargs_(std::move(kwargs)) {}

 protected:
  void Execute() override {
    c10::InferenceMode inference;
    const c10::Device device = loaded_->device;
#ifdef ATENSPACE_WITH_CUDA
    std::optional<c10::cuda::CUDAStreamGuard> stream_guard;
    if (device.is_cuda()) stream_guard.emplace(WorkerStream(device.index()));
#endif
    if (!device.is_cpu()) {
      for (auto& arg : args_) MoveToDevice(arg, device);
      for (auto& [name, arg] : kwargs_) MoveToDevice(arg, device);
    }
    torch::jit::Method forward = loaded_->module.get_method("forward");
    // Checks names, arity and types against the schema before anything runs.
    std::vector<c10::IValue> stack = args_;
    stack.insert(stack.begin(), loaded_->module._ivalue());  // the schema starts with self
    try {
      forward.function().getSchema().checkAndNormalizeInputs(stack, kwargs_);
    } catch (...) {
      ErrorInfo error = DescribeCurrentException(ErrorCode::kBadInput);
      throw BindingError(ErrorCode::kBadInput, error.message);
    }
    c10::IValue output = forward(std::move(args_), kwargs_);
    output_ = PrepareForJs(output);  // copies CUDA outputs to the host (synchronises the stream)
    args_.clear();
    kwargs_.clear();
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Value out = EncodeIValue(env, output_);
    output_ = c10::IValue();
    return out;
  }

 private:
  static void MoveToDevice(c10::IValue& value, const c10::Device& device) {
    if (value.isTensor()) {
      value = value.toTensor().to(device);
    } else if (value.isTensorList()) {
      auto list = value.toTensorList();
      for (size_t i = 0; i < list.size(); ++i) list.set(i, list.get(i).to(device));
    }
  }

  std::shared_ptr<LoadedModule> loaded_;
  std::vector<c10::IValue> args_;
  torch::jit::Kwargs kwargs_;
  c10::IValue output_;
};

// JS value -> IValue for an argument declared with `type` in the forward schema.
c10::IValue ToArgument(const Napi::Value& value, const c10::TypePtr& type, const std::string& what) {
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      return DecodeTensor(value, what);
    case c10::TypeKind::OptionalType:
      if (value.IsNull() || value.IsUndefined()) return c10::IValue();
      return ToArgument(value, type->expectRef<c10::OptionalType>().getElementType(), what);
    case c10::TypeKind::IntType: {
      if (value.IsBigInt()) {
        bool lossless = false;
        const int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
        if (!lossless) Bad(what + ": integer out of int64 range");
        return v;
      }
      if (!value.IsNumber()) Bad(what + ": expected an integer");
      const double number = value.As<Napi::Number>().DoubleValue();
      if (number != static_cast<double>(static_cast<int64_t>(number))) Bad(what + ": expected an integer");
      return static_cast<int64_t>(number);
    }
    case c10::TypeKind::FloatType:
      if (!value.IsNumber()) Bad(what + ": expected a number");
      return value.As<Napi::Number>().DoubleValue();
    case c10::TypeKind::NumberType:
      if (!value.IsNumber()) Bad(what + ": expected a number");
      return value.As<Napi::Number>().DoubleValue();
    case c10::TypeKind::BoolType:
      if (!value.IsBoolean()) Bad(what + ": expected a boolean");
      return value.As<Napi::Boolean>().Value();
    case c10::TypeKind::StringType:
      if (!value.IsString()) Bad(what + ": expected a string");
      return value.As<Napi::String>().Utf8Value();
    case c10::TypeKind::ListType: {
      if (!value.IsArray()) Bad(what + ": expected an array");
      Napi::Array array = value.As<Napi::Array>();
      const c10::TypePtr element = type->expectRef<c10::ListType>().getElementType();
      if (element->kind() == c10::TypeKind::TensorType) {
        c10::List<at::Tensor> list;
        for (uint32_t i = 0; i < array.Length(); ++i) {
          list.push_back(DecodeTensor(array.Get(i), what + "[" + std::to_string(i) + "]"));
        }
        return list;
      }
      c10::impl::GenericList list(element);
      for (uint32_t i = 0; i < array.Length(); ++i) {
        list.push_back(ToArgument(array.Get(i), element, what + "[" + std::to_string(i) + "]"));
      }
      return list;
    }
    default:
      Bad(what + ": arguments of type " + type->str() + " are not supported by the binding");
  }
}

}  // namespace

void ScriptModule::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function constructor = DefineClass(env, "ScriptModule",
                                           {
                                               InstanceMethod<&ScriptModule::Forward>("forward"),
                                               InstanceMethod<&ScriptModule::Schema>("schema"),
                                               InstanceMethod<&ScriptModule::Dispose>("dispose"),
                                               InstanceAccessor<&ScriptModule::Device>("device"),
                                               InstanceAccessor<&ScriptModule::Path>("path"),
                                               InstanceAccessor<&ScriptModule::Disposed>("disposed"),
                                           });
  Addon::Of(env).script_module_constructor = Napi::Persistent(constructor);
  exports.Set("ScriptModule", constructor);

  // load(path, device) -> Promise<ScriptModule>, on the worker pool.
  exports.Set("load", Napi::Function::New(
                          env,
                          [](const Napi::CallbackInfo& info) -> Napi::Value {
                            Napi::Env env = info.Env();
                            if (info.Length() < 1 || !info[0].IsString()) {
                              ThrowJs(env, ErrorCode::kBadInput, "load(path, device) needs a path string");
                            }
                            std::string device = "cpu";
                            if (info.Length() > 1 && !info[1].IsUndefined()) {
                              if (!info[1].IsString()) ThrowJs(env, ErrorCode::kBadInput, "device must be a string");
                              device = info[1].As<Napi::String>().Utf8Value();
                            }
                            auto task = std::make_unique<LoadTask>(env, info[0].As<Napi::String>().Utf8Value(), device);
                            return Addon::Of(env).dispatcher().Dispatch(env, std::move(task));
                          },
                          "load"));
}

Napi::Object ScriptModule::Wrap(Napi::Env env, std::shared_ptr<LoadedModule> loaded) {
  auto* holder = new std::shared_ptr<LoadedModule>(std::move(loaded));
  Napi::External<std::shared_ptr<LoadedModule>> external = Napi::External<std::shared_ptr<LoadedModule>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<LoadedModule>* held) { delete held; });
  return Addon::Of(env).script_module_constructor.New({external});
}

ScriptModule::ScriptModule(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ScriptModule>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    ThrowJs(info.Env(), ErrorCode::kBadInput, "ScriptModule cannot be constructed directly; use load()");
  }
  loaded_ = *info[0].As<Napi::External<std::shared_ptr<LoadedModule>>>().Data();
  device_name_ = DeviceName(loaded_->device);
  path_ = loaded_->path;
}

Napi::Value ScriptModule::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loaded_) ThrowJs(env, ErrorCode::kModelDisposed, "forward on a disposed module ('" + path_ + "')");
  const c10::FunctionSchema& schema = ForwardSchema(*loaded_);
  const auto& arguments = schema.arguments();  // arguments[0] is self
  const size_t declared = arguments.size() - 1;

  std::vector<c10::IValue> args;
  torch::jit::Kwargs kwargs;
  try {
    if (info.Length() > 1) Bad("forward takes one argument: an array of positional inputs or an object of named inputs");
    if (info.Length() == 0 || info[0].IsUndefined()) {
      // no inputs
    } else if (info[0].IsArray()) {
      Napi::Array inputs = info[0].As<Napi::Array>();
      if (inputs.Length() > declared) {
        Bad("forward takes " + std::to_string(declared) + " input(s), got " + std::to_string(inputs.Length()));
      }
      for (uint32_t i = 0; i < inputs.Length(); ++i) {
        const auto& argument = arguments[i + 1];
        args.push_back(ToArgument(inputs.Get(i), argument.type(), "input " + std::to_string(i) + " ('" + argument.name() + "')"));
      }
    } else if (info[0].IsObject() && !IsTensorObject(info[0])) {
      Napi::Object named = info[0].As<Napi::Object>();
      Napi::Array keys = named.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
        const auto found = schema.argumentIndexWithName(key);
        if (!found || *found == 0) {
          std::string names;
          for (size_t a = 1; a < arguments.size(); ++a) names += (a > 1 ? ", " : "") + arguments[a].name();
          Bad("forward has no input named '" + key + "' (inputs: " + names + ")");
        }
        kwargs.emplace(key, ToArgument(named.Get(key), arguments[*found].type(), "input '" + key + "'"));
      }
    } else {
      Bad("forward expects an array of positional inputs or an object of named inputs");
    }
  } catch (const BindingError& e) {
    ThrowJs(env, e.code(), e.what());
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw ToJsError(env, DescribeCurrentException(ErrorCode::kBadInput));
  }

  auto task = std::make_unique<ForwardTask>(env, loaded_, std::move(args), std::move(kwargs));
  return Addon::Of(env).dispatcher().Dispatch(env, std::move(task));
}

Napi::Value ScriptModule::Schema(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loaded_) ThrowJs(env, ErrorCode::kModelDisposed, "schema of a disposed module ('" + path_ + "')");
  const c10::FunctionSchema& schema = ForwardSchema(*loaded_);
  Napi::Object out = Napi::Object::New(env);
  out.Set("text", Napi::String::New(env, c10::toString(schema)));
  Napi::Array arguments = Napi::Array::New(env);
  uint32_t index = 0;
  for (size_t i = 1; i < schema.arguments().size(); ++i) {
    const auto& argument = schema.arguments()[i];
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", Napi::String::New(env, argument.name()));
    entry.Set("type", Napi::String::New(env, argument.type()->annotation_str()));
    entry.Set("hasDefault", Napi::Boolean::New(env, argument.default_value().has_value()));
    arguments.Set(index++, entry);
  }
  out.Set("arguments", arguments);
  Napi::Array returns = Napi::Array::New(env);
  index = 0;
  for (const auto& ret : schema.returns()) {
    returns.Set(index++, Napi::String::New(env, ret.type()->annotation_str()));
  }
  out.Set("returns", returns);
  return out;
}

Napi::Value ScriptModule::Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_name_); }

Napi::Value ScriptModule::Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }

Napi::Value ScriptModule::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !loaded_); }

Napi::Value ScriptModule::Dispose(const Napi::CallbackInfo& info) {
  loaded_.reset();
  return info.Env().Undefined();
}

}  // namespace atenspace
