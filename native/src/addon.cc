// Entry point: registers the runtime functions and the ModelHandle class.
#include "addon.h"

#include <algorithm>
#include <thread>

#include "runtime_info.h"
#include "model_handle.h"
#include "similarity.h"

namespace atenspace {

size_t DefaultWorkerCount() {
  const size_t hardware = std::max(1u, std::thread::hardware_concurrency());
  return std::clamp<size_t>(hardware, 2, 16);
}

size_t Addon::worker_count() const {
  if (dispatcher_.started()) return dispatcher_.threads();
  return options.workers > 0 ? options.workers : DefaultWorkerCount();
}

Dispatcher& Addon::dispatcher() {
  dispatcher_.Start(worker_count());
  return dispatcher_;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* addon = new Addon(env);  // creates the dispatcher's TSFN
  env.SetInstanceData<Addon>(addon);
  // Join the worker threads before Node tears down the environment. Cleanup hooks run in
  // reverse order of registration, so this one (added after the TSFN was created) runs
  // before Node closes the TSFN: no worker can call into a freed TSFN, and no forward is
  // left running into LibTorch's static destructors.
  env.AddCleanupHook([addon] { addon->Stop(); });
  InitRuntimeInfo(env, exports);
  ModelHandle::Init(env, exports);
  InitSimilarity(env, exports);
  return exports;
}

}  // namespace atenspace

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return atenspace::Init(env, exports); }

NODE_API_MODULE(atenspace, InitAddon)
