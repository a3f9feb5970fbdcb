#include "worker_pool.h"

namespace atenspace {

WorkerPool::WorkerPool(size_t threads, std::function<void()> thread_init) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, thread_init] { Loop(thread_init); });
  }
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    jobs_.push_back(std::move(job));
    queued_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_one();
}

void WorkerPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    jobs_.clear();
    queued_.store(0);
  }
  wake_.notify_all();
  for (auto& thread : threads_) {
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }
}

size_t WorkerPool::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.size();
}

bool WorkerPool::TakeJob(Job& job) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
  if (stopping_) return false;
  job = std::move(jobs_.front());
  jobs_.pop_front();
  queued_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void WorkerPool::Loop(const std::function<void()>& thread_init) {
  if (thread_init) thread_init();
  // After a job, poll briefly before sleeping: a caller awaiting one forward at a time
  // sends the next one within microseconds, and a futex wake-up costs tens of them.
  constexpr auto kSpin = std::chrono::microseconds(kSpinMicros);
  for (;;) {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    while (queued_.load(std::memory_order_acquire) == 0 && std::chrono::steady_clock::now() < until) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    Job job;
    if (!TakeJob(job)) return;
    job();
  }
}

}  // namespace atenspace
