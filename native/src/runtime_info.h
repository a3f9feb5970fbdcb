// Runtime-wide functions: versions, devices, thread configuration, device memory.
#pragma once

#include <napi.h>

namespace atenspace {

void InitRuntimeInfo(Napi::Env env, Napi::Object exports);

}  // namespace atenspace
