// The intra-op thread count of one forward, on the worker thread that runs it.
//
// LibTorch's at::set_num_threads is process-wide (and clears oneDNN's caches); OpenMP's
// omp_set_num_threads and MKL's mkl_set_num_threads_local are per calling thread, so a worker
// can run a tiny forward on one thread (no wake-up of the others for each of its ~100 parallel
// regions) and a big batch on all of them, without touching the other workers.
#pragma once

namespace atenspace {

class ScopedIntraOpThreads {
 public:
  // threads <= 0: leave the thread's setting as it is.
  explicit ScopedIntraOpThreads(int threads);
  ~ScopedIntraOpThreads();

  ScopedIntraOpThreads(const ScopedIntraOpThreads&) = delete;
  ScopedIntraOpThreads& operator=(const ScopedIntraOpThreads&) = delete;

  // Whether this build can set threads per call (OpenMP is LibTorch's intra-op backend).
  static bool Supported();

 private:
  int previous_ = 0;
};

}  // namespace atenspace
