#include "async_task.h"

#include <ATen/Parallel.h>

namespace atenspace {

void AsyncTask::Run() {
  try {
    Execute();
  } catch (...) {
    failed_ = true;
    error_ = DescribeCurrentException(fallback_code_);
  }
}

void AsyncTask::Settle(Napi::Env env) {
  Napi::HandleScope scope(env);
  if (failed_) {
    deferred_.Reject(ToJsError(env, error_).Value());
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    deferred_.Reject(ToJsError(env, DescribeCurrentException(fallback_code_)).Value());
  }
}

Dispatcher::Dispatcher(Napi::Env env) {
  tsfn_ = Tsfn::New(env, "atenspace.dispatch", 0, 1, this);
  tsfn_.Unref(env);
}

void Dispatcher::Start(size_t threads) {
  if (pool_ || stopped_) return;
  pool_ = std::make_unique<WorkerPool>(threads, [] {
    // Apply the configured intra-op thread count to this thread's OpenMP/ATen state.
    at::init_num_threads();
  });
}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (pool_) pool_->Stop();
  tsfn_.Release();
}

Napi::Promise Dispatcher::Dispatch(Napi::Env env, std::unique_ptr<AsyncTask> task) {
  Napi::Promise promise = task->Promise();
  if (stopped_) {
    ThrowJs(env, ErrorCode::kInternal, "the runtime is shutting down");
  }
  if (in_flight_++ == 0) tsfn_.Ref(env);
  AsyncTask* raw = task.release();
  pool_->Submit([this, raw] {
    raw->Run();
    if (tsfn_.BlockingCall(raw) != napi_ok) delete raw;  // runtime closing: nobody is waiting
  });
  return promise;
}

void Dispatcher::Deliver(Napi::Env env, Napi::Function, Dispatcher* self, AsyncTask* task) {
  std::unique_ptr<AsyncTask> owned(task);
  if (env == nullptr) return;  // the TSFN is being torn down
  owned->Settle(env);
  if (--self->in_flight_ == 0) self->tsfn_.Unref(env);
}

}  // namespace atenspace
