#include "device.h"

#include <torch/cuda.h>

#include <unordered_map>

#include "errors.h"

namespace atenspace {

c10::Device ResolveDevice(const std::string& requested) {
  const bool cuda = torch::cuda::is_available();
  if (requested == "auto") return cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  const std::string unknown = "unknown device '" + requested + "' (expected cpu, cuda, cuda:N or auto)";
  if (requested != "cpu" && requested != "cuda" && requested.rfind("cuda:", 0) != 0) {
    throw BindingError(ErrorCode::kBadInput, unknown);
  }
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(requested);
  } catch (...) {
    throw BindingError(ErrorCode::kBadInput, unknown);
  }
  if (device.is_cuda()) {
    if (!cuda) {
      throw BindingError(ErrorCode::kCudaUnavailable,
                         "device '" + requested + "' requested but CUDA is not available" +
#ifdef ATENSPACE_WITH_CUDA
                             std::string(" (no CUDA device or driver found)")
#else
                             std::string(" (this addon was built against a CPU-only LibTorch)")
#endif
      );
    }
    if (!device.has_index()) device.set_index(0);
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (device.index() >= count) {
      throw BindingError(ErrorCode::kCudaUnavailable, "device '" + requested + "' requested but only " +
                                                          std::to_string(count) + " CUDA device(s) exist");
    }
  }
  return device;
}

#ifdef ATENSPACE_WITH_CUDA
c10::cuda::CUDAStream WorkerStream(c10::DeviceIndex index) {
  thread_local std::unordered_map<int, c10::cuda::CUDAStream> streams;
  auto found = streams.find(index);
  if (found == streams.end()) {
    found = streams.emplace(index, c10::cuda::getStreamFromPool(false, index)).first;
  }
  return found->second;
}
#endif

}  // namespace atenspace
