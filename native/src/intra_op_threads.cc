#include "intra_op_threads.h"

// Weak: resolved from LibTorch's own libgomp and (x86 builds) its MKL when they are there, null
// otherwise (a LibTorch without OpenMP or MKL), so the addon links against any LibTorch.
extern "C" {
void omp_set_num_threads(int) __attribute__((weak));
int omp_get_max_threads() __attribute__((weak));
// MKL's C entry point (mkl_service.h maps mkl_set_num_threads_local to it); the lower-case
// symbol LibTorch exports is the Fortran one, which takes a pointer.
int MKL_Set_Num_Threads_Local(int) __attribute__((weak));
}

namespace atenspace {

bool ScopedIntraOpThreads::Supported() { return omp_set_num_threads != nullptr && omp_get_max_threads != nullptr; }

ScopedIntraOpThreads::ScopedIntraOpThreads(int threads) {
  if (threads <= 0 || !Supported()) return;
  const int current = omp_get_max_threads();
  if (current == threads) return;
  previous_ = current;
  omp_set_num_threads(threads);
  if (MKL_Set_Num_Threads_Local != nullptr) MKL_Set_Num_Threads_Local(threads);
}

ScopedIntraOpThreads::~ScopedIntraOpThreads() {
  if (previous_ <= 0) return;
  omp_set_num_threads(previous_);
  // 0 clears the thread-local setting: MKL goes back to the process-wide one.
  if (MKL_Set_Num_Threads_Local != nullptr) MKL_Set_Num_Threads_Local(0);
}

}  // namespace atenspace
