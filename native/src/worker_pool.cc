#include "worker_pool.h"

#include <algorithm>

namespace atenspace {

WorkerPool::WorkerPool(size_t threads, std::function<void()> thread_init) {
  threads_.reserve(threads);
  signalled_.assign(threads, false);
  for (size_t i = 0; i < threads; ++i) wake_.push_back(std::make_unique<std::condition_variable>());
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i, thread_init] { Loop(i, thread_init); });
  }
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Submit(Job job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) return;
  jobs_.push_back(std::move(job));
  queued_.fetch_add(1, std::memory_order_release);
  // A polling worker takes the job itself (it re-checks under this lock before sleeping).
  if (!idle_.empty() && spinning_.load(std::memory_order_acquire) == 0) {
    const size_t worker = idle_.back();  // the most recently idle worker
    idle_.pop_back();
    signalled_[worker] = true;
    wake_[worker]->notify_one();
  }
}

void WorkerPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    jobs_.clear();
    queued_.store(0);
  }
  for (auto& cv : wake_) cv->notify_all();
  for (auto& thread : threads_) {
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }
}

size_t WorkerPool::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.size();
}

bool WorkerPool::TakeJob(size_t self, Job& job) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_ && jobs_.empty()) {
    idle_.push_back(self);
    signalled_[self] = false;
    wake_[self]->wait(lock, [this, self] { return stopping_ || signalled_[self]; });
    // Woken for a job another worker may have taken meanwhile: look again.
    if (!signalled_[self]) {
      auto at = std::find(idle_.begin(), idle_.end(), self);
      if (at != idle_.end()) idle_.erase(at);
    }
  }
  if (stopping_) return false;
  job = std::move(jobs_.front());
  jobs_.pop_front();
  queued_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void WorkerPool::Loop(size_t self, const std::function<void()>& thread_init) {
  if (thread_init) thread_init();
  // After a job, poll briefly before sleeping: a caller awaiting one forward at a time
  // sends the next one within microseconds, and a futex wake-up costs tens of them.
  constexpr auto kSpin = std::chrono::microseconds(kSpinMicros);
  for (;;) {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    spinning_.fetch_add(1, std::memory_order_acq_rel);
    while (queued_.load(std::memory_order_acquire) == 0 && std::chrono::steady_clock::now() < until) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    spinning_.fetch_sub(1, std::memory_order_acq_rel);
    Job job;
    if (!TakeJob(self, job)) return;
    job();
  }
}

}  // namespace atenspace
