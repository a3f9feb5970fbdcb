#include "errors.h"

#include <c10/util/Exception.h>

#include <exception>
#include <sstream>
#include <vector>

namespace atenspace {

const char* CodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadInput: return "BAD_INPUT";
    case ErrorCode::kModelNotFound: return "MODEL_NOT_FOUND";
    case ErrorCode::kModelLoadFailed: return "MODEL_LOAD_FAILED";
    case ErrorCode::kForwardFailed: return "FORWARD_FAILED";
    case ErrorCode::kCudaUnavailable: return "CUDA_UNAVAILABLE";
    case ErrorCode::kOutOfMemory: return "OUT_OF_MEMORY";
    case ErrorCode::kModelDisposed: return "MODEL_DISPOSED";
    case ErrorCode::kRuntimeStarted: return "RUNTIME_STARTED";
    case ErrorCode::kInternal: return "INTERNAL";
  }
  return "INTERNAL";
}

namespace {

std::string Trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

// LibTorch messages may end in "Exception raised from ... frame #0 ..." (a C++ backtrace):
// cut it off wherever it appears.
std::string StripBacktrace(std::string text) {
  for (const char* marker : {"Exception raised from ", "\nframe #0"}) {
    const auto at = text.find(marker);
    if (at != std::string::npos) text = text.substr(0, at);
  }
  return Trim(text);
}

// TorchScript interpreter errors read "The following operation failed ... Traceback of
// TorchScript ... RuntimeError: <what happened>". The last "XxxError: " line is the message.
ErrorInfo FromTorchText(ErrorCode code, const std::string& raw) {
  ErrorInfo info;
  info.code = code;
  const std::string text = StripBacktrace(raw);
  std::vector<std::string> lines;
  std::stringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  std::string message;
  for (size_t i = lines.size(); i-- > 0;) {
    const std::string line = Trim(lines[i]);
    const auto colon = line.find("Error: ");
    if (colon != std::string::npos && line.find(' ') > colon) {
      // Keep the rest of the text after this line: the message may span lines.
      message = line.substr(colon + 7);
      for (size_t j = i + 1; j < lines.size(); ++j) message += "\n" + lines[j];
      break;
    }
  }
  if (message.empty()) message = text;
  info.message = Trim(message);
  if (info.message != text) info.detail = text;
  if (info.message.empty()) info.message = "LibTorch raised an error without a message";
  return info;
}

}  // namespace

ErrorInfo DescribeCurrentException(ErrorCode fallback) {
  try {
    throw;
  } catch (const BindingError& e) {
    return ErrorInfo{e.code(), e.what(), ""};
  } catch (const c10::OutOfMemoryError& e) {
    return FromTorchText(ErrorCode::kOutOfMemory, e.what_without_backtrace());
  } catch (const c10::Error& e) {
    return FromTorchText(fallback, e.what_without_backtrace());
  } catch (const Napi::Error& e) {
    return ErrorInfo{fallback, e.Message(), ""};
  } catch (const std::bad_alloc&) {
    return ErrorInfo{ErrorCode::kOutOfMemory, "out of host memory", ""};
  } catch (const std::exception& e) {
    return FromTorchText(fallback, e.what());
  } catch (...) {
    return ErrorInfo{fallback, "unknown native error", ""};
  }
}

Napi::Error ToJsError(Napi::Env env, const ErrorInfo& info) {
  Napi::Error error = Napi::Error::New(env, info.message);
  error.Set("code", Napi::String::New(env, CodeName(info.code)));
  if (!info.detail.empty()) error.Set("detail", Napi::String::New(env, info.detail));
  return error;
}

void ThrowJs(Napi::Env env, ErrorCode code, const std::string& message) {
  throw ToJsError(env, ErrorInfo{code, message, ""});
}

}  // namespace atenspace
