// A fixed set of threads owned by the addon (not libuv's pool) that run jobs in order.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace atenspace {

class WorkerPool {
 public:
  using Job = std::function<void()>;

  // `thread_init` runs first on each thread (sets LibTorch's per-thread state).
  WorkerPool(size_t threads, std::function<void()> thread_init);
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(Job job);
  // Drop queued jobs, wait for running ones, join the threads. Idempotent.
  void Stop();

  size_t size() const { return threads_.size(); }
  size_t queued() const;

  // How long an idle worker polls for the next job before it sleeps.
  static constexpr int kSpinMicros = 100;

 private:
  void Loop(const std::function<void()>& thread_init);

  bool TakeJob(Job& job);

  mutable std::mutex mutex_;
  std::atomic<size_t> queued_{0};  // mirrors jobs_.size() for the lock-free spin
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace atenspace
