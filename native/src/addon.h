// Per-environment state of the addon: the dispatcher (worker pool) and JS constructors.
#pragma once

#include <napi.h>

#include <memory>

#include "async_task.h"

namespace atenspace {

struct RuntimeOptions {
  size_t workers = 0;             // 0: pick from the hardware
  int intra_op_threads = 0;       // 0: LibTorch's default
  int inter_op_threads = 0;       // 0: LibTorch's default
};

class Addon {
 public:
  static Addon& Of(Napi::Env env) { return *env.GetInstanceData<Addon>(); }

  explicit Addon(Napi::Env env) : dispatcher_(env) {}

  // The worker threads start on first use; after that the runtime can no longer be configured.
  Dispatcher& dispatcher();
  bool started() const { return dispatcher_.started(); }
  size_t worker_count() const;
  void Stop() { dispatcher_.Stop(); }

  RuntimeOptions options;
  Napi::FunctionReference model_handle_constructor;

 private:
  Dispatcher dispatcher_;
};

size_t DefaultWorkerCount();

}  // namespace atenspace
