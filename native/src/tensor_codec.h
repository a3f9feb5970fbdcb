// Tensors across the JS boundary: {dtype, shape, data: TypedArray} <-> at::Tensor, and
// whole TorchScript results (tensors nested in tuples, lists and dicts) back to JS.
#pragma once

#include <ATen/core/ivalue.h>
#include <napi.h>

#include <optional>
#include <string>

namespace atenspace {

std::optional<at::ScalarType> ParseDType(const std::string& name);
// Our name for a dtype ("float32", ...), or nullopt when JS cannot hold it.
std::optional<std::string> DTypeName(at::ScalarType type);

bool IsTensorObject(const Napi::Value& value);

// Copy a JS tensor object into a new CPU tensor. `what` names it in error messages.
// Throws BindingError(BAD_INPUT) on anything malformed.
at::Tensor DecodeTensor(const Napi::Value& value, const std::string& what);

// On a worker thread: move every tensor in `value` to contiguous CPU memory the result
// may own outright (copies only when needed). Throws on types JS cannot represent.
c10::IValue PrepareForJs(const c10::IValue& value);

// On the JS thread: convert a prepared value. Tensor data is handed to JS without a copy
// (an external ArrayBuffer that keeps the tensor alive until the GC frees it).
Napi::Value EncodeIValue(Napi::Env env, const c10::IValue& value);

// Process-wide counts of tensor memory that crosses the JS boundary, for leak checks:
// outputs are the tensors held by JS ArrayBuffers (counted when the buffer is created, until
// its GC finalizer runs; empty tensors have no buffer and are not counted); inputs are the
// tensors DecodeTensor made from JS data that are still alive (they should all be freed when
// the forward that took them settles). Each count is of tensors, each bytes figure of their data.
struct LiveTensorCounts {
  int64_t outputs;
  int64_t output_bytes;
  int64_t inputs;
  int64_t input_bytes;
};
LiveTensorCounts LiveTensors();

}  // namespace atenspace
