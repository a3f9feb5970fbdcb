#include "tensor_codec.h"

#include <ATen/ATen.h>
#include <c10/core/impl/alloc_cpu.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "errors.h"

namespace atenspace {

namespace {

std::atomic<int64_t> live_outputs{0};
std::atomic<int64_t> live_output_bytes{0};
std::atomic<int64_t> live_inputs{0};
std::atomic<int64_t> live_input_bytes{0};

struct DTypeEntry {
  const char* name;
  at::ScalarType type;
  napi_typedarray_type array;
  const char* array_name;
};

// float16 and bfloat16 travel as their raw 16-bit patterns in a Uint16Array (Node 20 has
// no Float16Array); bool travels as a Uint8Array of 0/1.
constexpr DTypeEntry kDTypes[] = {
    {"float32", at::kFloat, napi_float32_array, "Float32Array"},
    {"float64", at::kDouble, napi_float64_array, "Float64Array"},
    {"float16", at::kHalf, napi_uint16_array, "Uint16Array"},
    {"bfloat16", at::kBFloat16, napi_uint16_array, "Uint16Array"},
    {"int64", at::kLong, napi_bigint64_array, "BigInt64Array"},
    {"int32", at::kInt, napi_int32_array, "Int32Array"},
    {"int8", at::kChar, napi_int8_array, "Int8Array"},
    {"uint8", at::kByte, napi_uint8_array, "Uint8Array"},
    {"bool", at::kBool, napi_uint8_array, "Uint8Array"},
};

const DTypeEntry* FindByName(const std::string& name) {
  for (const auto& entry : kDTypes) {
    if (name == entry.name) return &entry;
  }
  return nullptr;
}

const DTypeEntry* FindByType(at::ScalarType type) {
  for (const auto& entry : kDTypes) {
    if (entry.type == type) return &entry;
  }
  return nullptr;
}

const char* TypedArrayName(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

[[noreturn]] void Bad(const std::string& message) { throw BindingError(ErrorCode::kBadInput, message); }

std::string KnownDTypes() {
  std::string out;
  for (const auto& entry : kDTypes) {
    if (!out.empty()) out += ", ";
    out += entry.name;
  }
  return out;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

int64_t ReadDimension(const Napi::Value& value, const std::string& what, size_t index) {
  double number;
  if (value.IsNumber()) {
    number = value.As<Napi::Number>().DoubleValue();
  } else if (value.IsBigInt()) {
    bool lossless = false;
    const int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless || v < 0) Bad(what + ": shape[" + std::to_string(index) + "] must be a non-negative integer");
    return v;
  } else {
    Bad(what + ": shape[" + std::to_string(index) + "] must be a number");
  }
  if (!std::isfinite(number) || number < 0 || std::floor(number) != number || number > 9.007199254740991e15) {
    Bad(what + ": shape[" + std::to_string(index) + "] must be a non-negative integer");
  }
  return static_cast<int64_t>(number);
}

// Tensors JS may take over: contiguous, on the CPU, not aliasing module state or inputs.
at::Tensor OwnedCpu(const at::Tensor& tensor) {
  if (!tensor.defined()) return tensor;
  at::Tensor t = tensor;
  if (t.is_quantized()) t = t.dequantize();
  if (t.layout() != at::kStrided) t = t.to_dense();
  if (!FindByType(t.scalar_type())) {
    throw BindingError(ErrorCode::kForwardFailed,
                       std::string("the model returned a tensor of dtype ") + c10::toString(t.scalar_type()) +
                           ", which cannot be passed to JavaScript (supported: " + KnownDTypes() + ")");
  }
  const bool was_cpu = t.is_cpu();
  t = t.to(at::kCPU).contiguous();
  // Outputs created under InferenceMode are inference tensors. Anything else is state that
  // outlives this call (a parameter, a buffer, an input): hand JS its own copy.
  if (was_cpu && !t.is_inference()) t = t.clone();
  if (t.storage_offset() != 0 || t.storage().nbytes() > t.nbytes() * 2 + 4096) {
    // A small view into a large storage would pin the whole storage in JS.
    t = t.clone();
  }
  return t;
}

}  // namespace

LiveTensorCounts LiveTensors() {
  return {live_outputs.load(std::memory_order_relaxed), live_output_bytes.load(std::memory_order_relaxed),
          live_inputs.load(std::memory_order_relaxed), live_input_bytes.load(std::memory_order_relaxed)};
}

std::optional<at::ScalarType> ParseDType(const std::string& name) {
  const auto* entry = FindByName(name);
  if (!entry) return std::nullopt;
  return entry->type;
}

std::optional<std::string> DTypeName(at::ScalarType type) {
  const auto* entry = FindByType(type);
  if (!entry) return std::nullopt;
  return std::string(entry->name);
}

bool IsTensorObject(const Napi::Value& value) {
  if (!value.IsObject() || value.IsArray() || value.IsTypedArray()) return false;
  Napi::Object obj = value.As<Napi::Object>();
  return obj.Has("dtype") && obj.Has("shape") && obj.Has("data");
}

at::Tensor DecodeTensor(const Napi::Value& value, const std::string& what) {
  if (!IsTensorObject(value)) Bad(what + ": expected a tensor {dtype, shape, data}");
  Napi::Object obj = value.As<Napi::Object>();

  Napi::Value dtype_value = obj.Get("dtype");
  if (!dtype_value.IsString()) Bad(what + ": dtype must be a string (one of " + KnownDTypes() + ")");
  const std::string dtype_name = dtype_value.As<Napi::String>().Utf8Value();
  const DTypeEntry* dtype = FindByName(dtype_name);
  if (!dtype) Bad(what + ": unknown dtype '" + dtype_name + "' (expected one of " + KnownDTypes() + ")");

  Napi::Value shape_value = obj.Get("shape");
  if (!shape_value.IsArray()) Bad(what + ": shape must be an array of non-negative integers");
  Napi::Array shape_array = shape_value.As<Napi::Array>();
  std::vector<int64_t> shape(shape_array.Length());
  int64_t numel = 1;
  for (uint32_t i = 0; i < shape_array.Length(); ++i) {
    shape[i] = ReadDimension(shape_array.Get(i), what, i);
    if (shape[i] != 0 && numel > std::numeric_limits<int64_t>::max() / shape[i]) Bad(what + ": shape is too large");
    numel *= shape[i];
  }

  Napi::Value data_value = obj.Get("data");
  if (!data_value.IsTypedArray()) {
    Bad(what + ": data must be a " + dtype->array_name + " for dtype " + dtype->name);
  }
  Napi::TypedArray data = data_value.As<Napi::TypedArray>();
  const napi_typedarray_type array_type = data.TypedArrayType();
  const bool accepted = array_type == dtype->array ||
                        (dtype->array == napi_uint8_array && array_type == napi_uint8_clamped_array);
  if (!accepted) {
    Bad(what + ": dtype " + dtype->name + " needs a " + dtype->array_name + ", got a " +
        TypedArrayName(array_type));
  }
  if (static_cast<int64_t>(data.ElementLength()) != numel) {
    Bad(what + ": shape " + ShapeText(shape) + " needs " + std::to_string(numel) + " elements, data has " +
        std::to_string(data.ElementLength()));
  }

  const at::TensorOptions options = at::TensorOptions().dtype(dtype->type);
  const size_t bytes = static_cast<size_t>(numel) * c10::elementSize(dtype->type);
  at::Tensor tensor;
  if (bytes == 0) {
    tensor = at::empty(shape, options);
  } else {
    // The CPU allocator's own aligned allocation, with a deleter that also keeps the live-input
    // count (the deleter runs wherever the last reference goes, usually a worker thread).
    void* memory = c10::alloc_cpu(bytes);
    live_inputs.fetch_add(1, std::memory_order_relaxed);
    live_input_bytes.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
    try {
      tensor = at::from_blob(
          memory, shape,
          [bytes](void* data) {
            c10::free_cpu(data);
            live_inputs.fetch_sub(1, std::memory_order_relaxed);
            live_input_bytes.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed);
          },
          options);
    } catch (...) {
      c10::free_cpu(memory);
      live_inputs.fetch_sub(1, std::memory_order_relaxed);
      live_input_bytes.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed);
      throw;
    }
  }
  const auto* source = static_cast<const uint8_t*>(data.ArrayBuffer().Data()) + data.ByteOffset();
  if (dtype->type == at::kBool) {
    auto* out = tensor.data_ptr<bool>();
    for (int64_t i = 0; i < numel; ++i) out[i] = source[i] != 0;
  } else if (numel > 0) {
    std::memcpy(tensor.data_ptr(), source, tensor.nbytes());
  }
  return tensor;
}

c10::IValue PrepareForJs(const c10::IValue& value) {
  if (value.isTensor()) return OwnedCpu(value.toTensor());
  if (value.isTuple()) {
    std::vector<c10::IValue> items;
    for (const auto& item : value.toTupleRef().elements()) items.push_back(PrepareForJs(item));
    return c10::ivalue::Tuple::create(std::move(items));
  }
  if (value.isList()) {
    c10::impl::GenericList out(c10::AnyType::get());
    for (const auto& item : value.toListRef()) out.push_back(PrepareForJs(item));
    return out;
  }
  if (value.isGenericDict()) {
    c10::impl::GenericDict out(c10::AnyType::get(), c10::AnyType::get());
    for (const auto& entry : value.toGenericDict()) out.insert(entry.key(), PrepareForJs(entry.value()));
    return out;
  }
  if (value.isNone() || value.isBool() || value.isInt() || value.isDouble() || value.isString()) return value;
  throw BindingError(ErrorCode::kForwardFailed,
                     "the model returned a " + value.tagKind() + ", which cannot be passed to JavaScript");
}

Napi::Value EncodeIValue(Napi::Env env, const c10::IValue& value) {
  if (value.isTensor()) {
    const at::Tensor& tensor = value.toTensor();
    const DTypeEntry* dtype = FindByType(tensor.scalar_type());
    Napi::Object out = Napi::Object::New(env);
    out.Set("dtype", Napi::String::New(env, dtype->name));
    Napi::Array shape = Napi::Array::New(env, tensor.dim());
    for (int64_t i = 0; i < tensor.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, tensor.size(i)));
    out.Set("shape", shape);

    const size_t bytes = tensor.nbytes();
    Napi::ArrayBuffer buffer;
    if (bytes == 0) {
      buffer = Napi::ArrayBuffer::New(env, 0);
    } else {
      auto* keep = new at::Tensor(tensor);
      buffer = Napi::ArrayBuffer::New(
          env, keep->data_ptr(), bytes,
          [](Napi::Env finalize_env, void*, at::Tensor* held) {
            const auto held_bytes = static_cast<int64_t>(held->nbytes());
            Napi::MemoryManagement::AdjustExternalMemory(finalize_env, -held_bytes);
            delete held;
            live_outputs.fetch_sub(1, std::memory_order_relaxed);
            live_output_bytes.fetch_sub(held_bytes, std::memory_order_relaxed);
          },
          keep);
      live_outputs.fetch_add(1, std::memory_order_relaxed);
      live_output_bytes.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
      Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
    }
    const size_t length = static_cast<size_t>(tensor.numel());
    napi_value array;
    NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, dtype->array, length, buffer, 0, &array), Napi::Value());
    out.Set("data", Napi::Value(env, array));
    return out;
  }
  if (value.isTuple()) {
    const auto& elements = value.toTupleRef().elements();
    Napi::Array out = Napi::Array::New(env, elements.size());
    for (size_t i = 0; i < elements.size(); ++i) out.Set(static_cast<uint32_t>(i), EncodeIValue(env, elements[i]));
    return out;
  }
  if (value.isList()) {
    const auto list = value.toListRef();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) out.Set(static_cast<uint32_t>(i), EncodeIValue(env, list[i]));
    return out;
  }
  if (value.isGenericDict()) {
    Napi::Object out = Napi::Object::New(env);
    for (const auto& entry : value.toGenericDict()) {
      const c10::IValue& key = entry.key();
      std::string name;
      if (key.isString()) name = key.toStringRef();
      else if (key.isInt()) name = std::to_string(key.toInt());
      else if (key.isDouble()) name = std::to_string(key.toDouble());
      else if (key.isBool()) name = key.toBool() ? "true" : "false";
      else throw BindingError(ErrorCode::kForwardFailed, "the model returned a dict with " + key.tagKind() + " keys");
      out.Set(name, EncodeIValue(env, entry.value()));
    }
    return out;
  }
  if (value.isNone()) return env.Null();
  if (value.isBool()) return Napi::Boolean::New(env, value.toBool());
  if (value.isInt()) {
    const int64_t v = value.toInt();
    if (v > 9007199254740991LL || v < -9007199254740991LL) return Napi::BigInt::New(env, v);
    return Napi::Number::New(env, static_cast<double>(v));
  }
  if (value.isDouble()) return Napi::Number::New(env, value.toDouble());
  if (value.isString()) return Napi::String::New(env, value.toStringRef());
  throw BindingError(ErrorCode::kForwardFailed, "cannot convert a " + value.tagKind() + " to JavaScript");
}

}  // namespace atenspace
