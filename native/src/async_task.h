// Work that runs on the addon's worker pool and settles a JS Promise on the JS thread.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include "errors.h"
#include "worker_pool.h"

namespace atenspace {

class AsyncTask {
 public:
  AsyncTask(Napi::Env env, ErrorCode fallback_code)
      : deferred_(Napi::Promise::Deferred::New(env)), fallback_code_(fallback_code) {}
  virtual ~AsyncTask() = default;

  Napi::Promise Promise() const { return deferred_.Promise(); }

  // On a pool thread: no JS may be touched here.
  void Run();
  // On the JS thread: resolve or reject the promise.
  void Settle(Napi::Env env);

 protected:
  virtual void Execute() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

 private:
  Napi::Promise::Deferred deferred_;
  ErrorCode fallback_code_;
  bool failed_ = false;
  ErrorInfo error_;
};

// Owns the worker pool and the one thread-safe function through which finished tasks
// come back to the JS thread. The TSFN is referenced only while tasks are in flight, so
// an idle runtime never keeps the process alive.
class Dispatcher {
 public:
  explicit Dispatcher(Napi::Env env);
  ~Dispatcher();

  // Start the worker threads (first dispatch does it with the configured count).
  void Start(size_t threads);
  bool started() const { return pool_ != nullptr; }

  // Takes ownership of the task and returns its promise.
  Napi::Promise Dispatch(Napi::Env env, std::unique_ptr<AsyncTask> task);
  // Join the workers and release the TSFN. Must run before Node closes the TSFN.
  void Stop();

  size_t threads() const { return pool_ ? pool_->size() : 0; }
  size_t in_flight() const { return in_flight_; }

 private:
  static void Deliver(Napi::Env env, Napi::Function unused, Dispatcher* self, AsyncTask* task);
  using Tsfn = Napi::TypedThreadSafeFunction<Dispatcher, AsyncTask, &Dispatcher::Deliver>;

  Tsfn tsfn_;
  std::unique_ptr<WorkerPool> pool_;
  size_t in_flight_ = 0;  // touched on the JS thread only
  bool stopped_ = false;
};

}  // namespace atenspace
