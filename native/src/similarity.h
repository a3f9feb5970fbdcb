// Exact nearest-neighbour search over a contiguous, pre-normalised embedding matrix:
// scores are one matrix product (LibTorch/MKL) and top-k is a filtered heap scan, off the
// event loop on the addon's worker pool.
#pragma once

#include <napi.h>

namespace atenspace {

void InitSimilarity(Napi::Env env, Napi::Object exports);

}  // namespace atenspace
