#include "similarity.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <queue>
#include <vector>

#include "addon.h"
#include "async_task.h"
#include "errors.h"

namespace atenspace {

namespace {

[[noreturn]] void Bad(const std::string& message) { throw BindingError(ErrorCode::kBadInput, message); }

struct Hit {
  float score;
  int32_t index;
};
// Min-heap on score (ties: the larger index is "smaller", so lower indices win ties).
struct WorseFirst {
  bool operator()(const Hit& a, const Hit& b) const { return a.score > b.score || (a.score == b.score && a.index < b.index); }
};

class TopKTask : public AsyncTask {
 public:
  TopKTask(Napi::Env env, Napi::TypedArray matrix, int64_t rows, int64_t dim, std::vector<float> queries, int64_t nq, int64_t k,
           Napi::TypedArray row_types, Napi::TypedArray allowed, float threshold)
      : AsyncTask(env, ErrorCode::kForwardFailed),
        matrix_ref_(Napi::Persistent(static_cast<Napi::Value>(matrix))),
        matrix_(reinterpret_cast<const float*>(static_cast<const uint8_t*>(matrix.ArrayBuffer().Data()) + matrix.ByteOffset())),
        rows_(rows),
        dim_(dim),
        queries_(std::move(queries)),
        nq_(nq),
        k_(k),
        threshold_(threshold) {
    if (!row_types.IsEmpty()) {
      types_ref_ = Napi::Persistent(static_cast<Napi::Value>(row_types));
      row_types_ = reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(row_types.ArrayBuffer().Data()) + row_types.ByteOffset());
    }
    if (!allowed.IsEmpty()) {
      const auto* data = static_cast<const uint8_t*>(allowed.ArrayBuffer().Data()) + allowed.ByteOffset();
      allowed_.assign(data, data + allowed.ElementLength());
    }
  }

 protected:
  void Execute() override {
    c10::InferenceMode guard;
    results_.assign(static_cast<size_t>(nq_), {});
    if (rows_ == 0) return;
    // The matrix is read in place (no copy); the JS array is held alive by matrix_ref_.
    at::Tensor m = at::from_blob(const_cast<float*>(matrix_), {rows_, dim_}, at::kFloat);
    at::Tensor q = at::from_blob(queries_.data(), {nq_, dim_}, at::kFloat);
    // scores[r, qi] = m[r] . q[qi], as m @ q^T: LibTorch's CPU GEMM is several times faster with
    // the large matrix on the left than as mv or q @ m^T (measured: bench/atomspace/torch_gemv.py).
    // One query is padded to two, which keeps it on the GEMM path.
    const at::Tensor padded = nq_ == 1 ? at::cat({q, q}) : q;
    const int64_t cols = padded.size(0);
    const at::Tensor scores = at::mm(m, padded.t()).contiguous();  // [rows, cols]
    const float* s = scores.data_ptr<float>();
    const bool filter_types = row_types_ != nullptr;
    at::parallel_for(0, nq_, 1, [&](int64_t begin, int64_t end) {
      for (int64_t qi = begin; qi < end; ++qi) {
        std::priority_queue<Hit, std::vector<Hit>, WorseFirst> heap;
        for (int64_t r = 0; r < rows_; ++r) {
          if (filter_types) {
            const uint16_t type = row_types_[r];
            if (type == 0xFFFF) continue;  // a removed row
            if (!allowed_.empty() && (type >= allowed_.size() || !allowed_[type])) continue;
          }
          const float score = s[r * cols + qi];
          if (!(score >= threshold_)) continue;  // also drops NaN
          if (static_cast<int64_t>(heap.size()) < k_) {
            heap.push({score, static_cast<int32_t>(r)});
          } else if (WorseFirst()(Hit{score, static_cast<int32_t>(r)}, heap.top())) {
            heap.pop();
            heap.push({score, static_cast<int32_t>(r)});
          }
        }
        auto& out = results_[static_cast<size_t>(qi)];
        out.resize(heap.size());
        for (size_t i = heap.size(); i-- > 0;) {
          out[i] = heap.top();
          heap.pop();
        }
      }
    });
  }

  Napi::Value Result(Napi::Env env) override {
    matrix_ref_.Reset();
    types_ref_.Reset();
    Napi::Array out = Napi::Array::New(env, results_.size());
    for (size_t qi = 0; qi < results_.size(); ++qi) {
      const auto& hits = results_[qi];
      Napi::Int32Array indices = Napi::Int32Array::New(env, hits.size());
      Napi::Float32Array scores = Napi::Float32Array::New(env, hits.size());
      for (size_t i = 0; i < hits.size(); ++i) {
        indices[i] = hits[i].index;
        scores[i] = hits[i].score;
      }
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("indices", indices);
      entry.Set("scores", scores);
      out.Set(static_cast<uint32_t>(qi), entry);
    }
    return out;
  }

 private:
  Napi::Reference<Napi::Value> matrix_ref_;
  Napi::Reference<Napi::Value> types_ref_;
  const float* matrix_;
  const uint16_t* row_types_ = nullptr;
  std::vector<uint8_t> allowed_;
  int64_t rows_, dim_;
  std::vector<float> queries_;
  int64_t nq_, k_;
  float threshold_;
  std::vector<std::vector<Hit>> results_;
};

int64_t ReadInt(const Napi::Value& v, const char* name, int64_t min, int64_t max) {
  if (!v.IsNumber()) Bad(std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (d != std::floor(d) || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    Bad(std::string(name) + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<int64_t>(d);
}

// topK({matrix, rows, dim, queries, k, rowTypes?, allowedTypes?, threshold?})
//   -> Promise<[{indices: Int32Array, scores: Float32Array}] per query>, best first.
Napi::Value TopK(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() != 1 || !info[0].IsObject()) Bad("topK expects an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Value matrix = o.Get("matrix");
    if (!matrix.IsTypedArray() || matrix.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) Bad("matrix must be a Float32Array");
    const int64_t dim = ReadInt(o.Get("dim"), "dim", 1, 1 << 16);
    const int64_t rows = ReadInt(o.Get("rows"), "rows", 0, INT32_MAX);
    Napi::Float32Array m = matrix.As<Napi::Float32Array>();
    if (static_cast<int64_t>(m.ElementLength()) < rows * dim) Bad("matrix holds fewer than rows x dim values");
    Napi::Value qv = o.Get("queries");
    if (!qv.IsTypedArray() || qv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) Bad("queries must be a Float32Array");
    Napi::Float32Array q = qv.As<Napi::Float32Array>();
    if (q.ElementLength() == 0 || q.ElementLength() % static_cast<size_t>(dim) != 0) Bad("queries must hold a whole number of dim-long vectors");
    const int64_t nq = static_cast<int64_t>(q.ElementLength()) / dim;
    const int64_t k = ReadInt(o.Get("k"), "k", 1, 100000);
    Napi::TypedArray row_types;
    Napi::Value rt = o.Get("rowTypes");
    if (!rt.IsUndefined() && !rt.IsNull()) {
      if (!rt.IsTypedArray() || rt.As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array) Bad("rowTypes must be a Uint16Array");
      row_types = rt.As<Napi::TypedArray>();
      if (static_cast<int64_t>(row_types.ElementLength()) < rows) Bad("rowTypes is shorter than rows");
    }
    Napi::TypedArray allowed;
    Napi::Value al = o.Get("allowedTypes");
    if (!al.IsUndefined() && !al.IsNull()) {
      if (!al.IsTypedArray() || al.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) Bad("allowedTypes must be a Uint8Array");
      allowed = al.As<Napi::TypedArray>();
    }
    float threshold = -INFINITY;
    Napi::Value th = o.Get("threshold");
    if (!th.IsUndefined() && !th.IsNull()) {
      if (!th.IsNumber()) Bad("threshold must be a number");
      threshold = th.As<Napi::Number>().FloatValue();
    }
    std::vector<float> queries(q.Data(), q.Data() + q.ElementLength());
    auto task = std::make_unique<TopKTask>(env, m, rows, dim, std::move(queries), nq, k, row_types, allowed, threshold);
    return Addon::Of(env).dispatcher().Dispatch(env, std::move(task));
  } catch (const BindingError& e) {
    ThrowJs(env, e.code(), e.what());
  }
}

}  // namespace

void InitSimilarity(Napi::Env env, Napi::Object exports) { exports.Set("topK", Napi::Function::New(env, TopK, "topK")); }

}  // namespace atenspace
