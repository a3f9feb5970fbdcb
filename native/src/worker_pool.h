// A fixed set of threads owned by the addon (not libuv's pool) that run jobs in order.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
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
  void Loop(size_t self, const std::function<void()>& thread_init);

  bool TakeJob(size_t self, Job& job);

  mutable std::mutex mutex_;
  std::atomic<size_t> queued_{0};  // mirrors jobs_.size() for the lock-free spin
  std::atomic<int> spinning_{0};   // workers polling for a job: they will take it, no wake-up needed
  // One wake-up per worker, and the idle workers as a stack: a new job wakes the worker that
  // went idle last. Sequential callers so keep landing on one warm thread (its OpenMP team,
  // caches and allocator arena) instead of alternating between threads.
  std::vector<std::unique_ptr<std::condition_variable>> wake_;
  std::vector<size_t> idle_;
  std::vector<bool> signalled_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace atenspace
