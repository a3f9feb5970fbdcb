#include "runtime_info.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#ifdef ATENSPACE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "addon.h"
#include "errors.h"
#include "intra_op_threads.h"
#include "loaded_model.h"
#include "tensor_codec.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace atenspace {

namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Addon& addon = Addon::Of(env);
  Napi::Object out = Napi::Object::New(env);
  out.Set("libtorch", Napi::String::New(env, TORCH_VERSION));
  out.Set("cudaBuilt", Napi::Boolean::New(env,
#ifdef ATENSPACE_WITH_CUDA
                                          true
#else
                                          false
#endif
                                          ));
  const bool cuda = torch::cuda::is_available();
  out.Set("cudaAvailable", Napi::Boolean::New(env, cuda));
  out.Set("cudaDeviceCount", Napi::Number::New(env, cuda ? static_cast<double>(torch::cuda::device_count()) : 0));
  out.Set("intraOpThreads", Napi::Number::New(env, at::get_num_threads()));
  out.Set("interOpThreads", Napi::Number::New(env, at::get_num_interop_threads()));
  out.Set("threadsPerCall", Napi::Boolean::New(env, ScopedIntraOpThreads::Supported()));
  out.Set("workerThreads", Napi::Number::New(env, static_cast<double>(addon.worker_count())));
  out.Set("started", Napi::Boolean::New(env, addon.started()));
  out.Set("liveModules", Napi::Number::New(env, static_cast<double>(LoadedModel::LiveCount())));
  const LiveTensorCounts tensors = LiveTensors();
  out.Set("liveTensors", Napi::Number::New(env, static_cast<double>(tensors.outputs)));
  out.Set("liveTensorBytes", Napi::Number::New(env, static_cast<double>(tensors.output_bytes)));
  out.Set("liveInputTensors", Napi::Number::New(env, static_cast<double>(tensors.inputs)));
  out.Set("liveInputTensorBytes", Napi::Number::New(env, static_cast<double>(tensors.input_bytes)));
  out.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
  return out;
}

int ReadCount(Napi::Env env, Napi::Object options, const char* key) {
  if (!options.Has(key) || options.Get(key).IsUndefined()) return 0;
  Napi::Value value = options.Get(key);
  if (!value.IsNumber()) ThrowJs(env, ErrorCode::kBadInput, std::string(key) + " must be a positive integer");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (number < 1 || number > 1024 || number != static_cast<int>(number)) {
    ThrowJs(env, ErrorCode::kBadInput, std::string(key) + " must be an integer from 1 to 1024");
  }
  return static_cast<int>(number);
}

// configure({workers, intraOpThreads, interOpThreads}): once, before the first load.
Napi::Value Configure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Addon& addon = Addon::Of(env);
  if (info.Length() < 1 || !info[0].IsObject()) ThrowJs(env, ErrorCode::kBadInput, "configure expects an options object");
  if (addon.started()) {
    ThrowJs(env, ErrorCode::kRuntimeStarted,
            "the runtime has started (a model was loaded); configure threads before the first load");
  }
  Napi::Object options = info[0].As<Napi::Object>();
  const int workers = ReadCount(env, options, "workers");
  const int intra = ReadCount(env, options, "intraOpThreads");
  const int inter = ReadCount(env, options, "interOpThreads");
  try {
    if (inter > 0 && inter != static_cast<int>(at::get_num_interop_threads())) at::set_num_interop_threads(inter);
    if (intra > 0) at::set_num_threads(intra);
  } catch (...) {
    ErrorInfo error = DescribeCurrentException(ErrorCode::kRuntimeStarted);
    throw ToJsError(env, error);
  }
  if (workers > 0) addon.options.workers = static_cast<size_t>(workers);
  if (intra > 0) addon.options.intra_op_threads = intra;
  if (inter > 0) addon.options.inter_op_threads = inter;
  return Info(info);
}

// cudaMemory(index) -> {allocated, reserved} in bytes, or null without CUDA.
Napi::Value CudaMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#ifdef ATENSPACE_WITH_CUDA
  if (!torch::cuda::is_available()) return env.Null();
  const int index = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  if (index < 0 || index >= static_cast<int>(torch::cuda::device_count())) {
    ThrowJs(env, ErrorCode::kCudaUnavailable, "no CUDA device " + std::to_string(index));
  }
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  Napi::Object out = Napi::Object::New(env);
  out.Set("allocated", Napi::Number::New(env, static_cast<double>(stats.allocated_bytes[aggregate].current)));
  out.Set("reserved", Napi::Number::New(env, static_cast<double>(stats.reserved_bytes[aggregate].current)));
  return out;
#else
  return env.Null();
#endif
}

// trimMemory(): hand the allocator's free pages back to the OS (glibc malloc_trim); after a
// model is unloaded its memory otherwise stays in the process's heap arenas.
Napi::Value TrimMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// trimMemoryAsync(): the same on a libuv pool thread (malloc_trim takes milliseconds on a
// large heap; the event loop should not wait for it). Resolves like trimMemory().
class TrimWorker : public Napi::AsyncWorker {
 public:
  explicit TrimWorker(Napi::Env env) : Napi::AsyncWorker(env, "atenspace:trimMemory"), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
#if defined(__GLIBC__)
    released_ = malloc_trim(0) != 0;
#endif
  }
  void OnOK() override { deferred_.Resolve(Napi::Boolean::New(Env(), released_)); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  bool released_ = false;
};

Napi::Value TrimMemoryAsync(const Napi::CallbackInfo& info) {
  auto* worker = new TrimWorker(info.Env());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void InitRuntimeInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("configure", Napi::Function::New(env, Configure, "configure"));
  exports.Set("cudaMemory", Napi::Function::New(env, CudaMemory, "cudaMemory"));
  exports.Set("trimMemory", Napi::Function::New(env, TrimMemory, "trimMemory"));
  exports.Set("trimMemoryAsync", Napi::Function::New(env, TrimMemoryAsync, "trimMemoryAsync"));
}

}  // namespace atenspace
