// Devices: resolving what the caller asked for, and the CUDA stream each worker thread uses.
#pragma once

#include <c10/core/Device.h>

#include <string>

#ifdef ATENSPACE_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace atenspace {

// "cpu" | "cuda" | "cuda:N" | "auto" -> a device this process can use. Throws BindingError
// (BAD_INPUT for a malformed name, CUDA_UNAVAILABLE for a CUDA device that is not there).
c10::Device ResolveDevice(const std::string& requested);

#ifdef ATENSPACE_WITH_CUDA
// One stream per worker thread and device, so concurrent forwards do not serialise on the
// default stream.
c10::cuda::CUDAStream WorkerStream(c10::DeviceIndex index);
#endif

}  // namespace atenspace
