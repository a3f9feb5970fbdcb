// Error codes of the binding and their trip from a worker thread to a JS Error.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace atenspace {

enum class ErrorCode {
  kBadInput,         // BAD_INPUT: the caller passed something malformed
  kModelNotFound,    // MODEL_NOT_FOUND: no file at the given path
  kModelLoadFailed,  // MODEL_LOAD_FAILED: LibTorch could not load the file
  kForwardFailed,    // FORWARD_FAILED: LibTorch raised while running forward
  kCudaUnavailable,  // CUDA_UNAVAILABLE: a CUDA device was asked for and is not there
  kOutOfMemory,      // OUT_OF_MEMORY: the device allocator gave up
  kModelDisposed,    // MODEL_DISPOSED: forward on a module after dispose()
  kRuntimeStarted,   // RUNTIME_STARTED: configure() after the runtime started
  kInternal,         // INTERNAL: a bug in the binding
};

const char* CodeName(ErrorCode code);

// Thrown inside the binding; carries its code to the JS side.
class BindingError : public std::runtime_error {
 public:
  BindingError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Plain data describing a failure, safe to move between threads.
struct ErrorInfo {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // one readable sentence, never a C++ backtrace
  std::string detail;   // the full LibTorch text (TorchScript traceback), when there is more
};

// Describe the exception currently being handled; call only inside a catch block.
// LibTorch errors get `fallback` unless they say what they are (out of memory).
ErrorInfo DescribeCurrentException(ErrorCode fallback);

// A JS Error with `code` (and `detail` when present) set.
Napi::Error ToJsError(Napi::Env env, const ErrorInfo& info);

// Throw a JS exception with a code from the JS thread.
[[noreturn]] void ThrowJs(Napi::Env env, ErrorCode code, const std::string& message);

}  // namespace atenspace
