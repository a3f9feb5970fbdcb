#include "aoti_model.h"

#include <torch/cuda.h>

#include <filesystem>
#include <map>

#ifdef ATENSPACE_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

#include "device.h"
#include "errors.h"
#include "tensor_codec.h"

namespace atenspace {

namespace {

// Metadata keys the exporter writes (exporter/aoti.py).
constexpr const char* kInputsKey = "atenspace.inputs";
constexpr const char* kOutputsKey = "atenspace.outputs";
constexpr const char* kReturnsKey = "atenspace.returns";
// AOTInductor's own: the device type the package was compiled for.
constexpr const char* kDeviceKey = "AOTI_DEVICE_KEY";

[[noreturn]] void Bad(const std::string& message) { throw BindingError(ErrorCode::kBadInput, message); }

std::string Shape(at::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

// The device to run a package compiled for `compiled` ("cpu" or "cuda") on, given what the
// caller asked for.
c10::Device PackageDevice(const std::string& path, const std::string& compiled, const std::string& requested) {
  if (compiled != "cpu" && compiled != "cuda") {
    throw BindingError(ErrorCode::kModelLoadFailed, "'" + path + "' was compiled for device '" + compiled +
                                                        "', which this binding does not run (cpu, cuda)");
  }
  const c10::Device device = requested == "auto" ? ResolveDevice(compiled == "cuda" ? "cuda" : "cpu")
                                                 : ResolveDevice(requested);
  if (device.type() != (compiled == "cuda" ? c10::kCUDA : c10::kCPU)) {
    throw BindingError(ErrorCode::kModelLoadFailed,
                       "'" + path + "' was compiled by AOTInductor for " + compiled + " and cannot run on " +
                           device.str() + " (export it again with --device " + (compiled == "cuda" ? "cpu" : "cuda") +
                           ", or load it on " + compiled + ")");
  }
  return device;
}

Napi::Value ParseJson(Napi::Env env, const std::string& text, const std::string& what) {
  Napi::Object json = env.Global().Get("JSON").As<Napi::Object>();
  try {
    return json.Get("parse").As<Napi::Function>().Call(json, {Napi::String::New(env, text)});
  } catch (const Napi::Error& e) {
    throw BindingError(ErrorCode::kModelLoadFailed, what + " is not valid JSON: " + e.Message());
  }
}

std::vector<int64_t> IntList(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) throw BindingError(ErrorCode::kModelLoadFailed, what + " is not an array");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value item = array.Get(i);
    if (!item.IsNumber()) throw BindingError(ErrorCode::kModelLoadFailed, what + " holds a non-number");
    out.push_back(item.As<Napi::Number>().Int64Value());
  }
  return out;
}

}  // namespace

std::shared_ptr<AotiModel> AotiModel::Load(const std::string& path, const std::string& requested_device, size_t runners) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw BindingError(ErrorCode::kModelNotFound, "no .pt2 package at '" + path + "'");
  }
  auto failed = [&path](const std::string& step) {
    ErrorInfo error = DescribeCurrentException(ErrorCode::kModelLoadFailed);
    if (error.code != ErrorCode::kOutOfMemory) error.code = ErrorCode::kModelLoadFailed;
    return BindingError(error.code, "cannot " + step + " '" + path + "' as an AOTInductor package: " + error.message);
  };
  std::unordered_map<std::string, std::string> metadata;
  try {
    metadata = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(path, "model");
  } catch (...) {
    throw failed("read");
  }
  if (!metadata.count(kInputsKey)) {
    throw BindingError(ErrorCode::kModelLoadFailed, "'" + path + "' has no '" + std::string(kInputsKey) +
                                                        "' metadata: export it with `python3 -m exporter export --format pt2`");
  }
  const auto compiled = metadata.find(kDeviceKey);
  const c10::Device device = PackageDevice(path, compiled == metadata.end() ? "cpu" : compiled->second, requested_device);
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  try {
    loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
        path, "model", /*run_single_threaded=*/false, std::max<size_t>(1, runners),
        device.is_cuda() ? device.index() : static_cast<c10::DeviceIndex>(-1));
  } catch (...) {
    throw failed("load");
  }
  return std::make_shared<AotiModel>(path, device, std::move(loader), std::move(metadata));
}

AotiModel::AotiModel(std::string path, c10::Device device, std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader,
                     std::unordered_map<std::string, std::string> metadata)
    : LoadedModel(std::move(path), device), loader_(std::move(loader)), metadata_(std::move(metadata)) {}

void AotiModel::Prepare(Napi::Env env) {
  const std::string where = "the '" + std::string(kInputsKey) + "' metadata of '" + path() + "'";
  Napi::Value parsed = ParseJson(env, metadata_.at(kInputsKey), where);
  if (!parsed.IsArray()) throw BindingError(ErrorCode::kModelLoadFailed, where + " is not an array");
  Napi::Array specs = parsed.As<Napi::Array>();
  for (uint32_t i = 0; i < specs.Length(); ++i) {
    Napi::Value item = specs.Get(i);
    if (!item.IsObject()) throw BindingError(ErrorCode::kModelLoadFailed, where + ": input " + std::to_string(i) + " is not an object");
    Napi::Object spec = item.As<Napi::Object>();
    InputSpec input;
    input.name = spec.Get("name").ToString().Utf8Value();
    input.dtype_name = spec.Get("dtype").ToString().Utf8Value();
    const auto dtype = ParseDType(input.dtype_name);
    if (!dtype) throw BindingError(ErrorCode::kModelLoadFailed, where + ": input '" + input.name + "' has unknown dtype " + input.dtype_name);
    input.dtype = *dtype;
    const std::vector<int64_t> shape = IntList(spec.Get("shape"), where + ": shape of '" + input.name + "'");
    input.min_shape = spec.Has("min_shape") ? IntList(spec.Get("min_shape"), where + ": min_shape of '" + input.name + "'") : shape;
    input.max_shape = spec.Has("max_shape") ? IntList(spec.Get("max_shape"), where + ": max_shape of '" + input.name + "'") : shape;
    if (input.min_shape.size() != shape.size() || input.max_shape.size() != shape.size()) {
      throw BindingError(ErrorCode::kModelLoadFailed, where + ": bounds of '" + input.name + "' do not match its rank");
    }
    input.symbols.assign(shape.size(), "");
    if (spec.Has("symbols") && spec.Get("symbols").IsArray()) {
      Napi::Array symbols = spec.Get("symbols").As<Napi::Array>();
      for (uint32_t d = 0; d < symbols.Length() && d < shape.size(); ++d) {
        if (symbols.Get(d).IsString()) input.symbols[d] = symbols.Get(d).As<Napi::String>().Utf8Value();
      }
    }
    inputs_.push_back(std::move(input));
  }
  const auto returns = metadata_.find(kReturnsKey);
  single_output_ = returns != metadata_.end() && returns->second == "tensor";

  signature_.text = "forward(";
  for (size_t i = 0; i < inputs_.size(); ++i) {
    signature_.text += (i ? ", " : "") + std::string("Tensor ") + inputs_[i].name;
    signature_.arguments.push_back({inputs_[i].name, "Tensor", false});
  }
  size_t outputs = 1;
  const auto declared = metadata_.find(kOutputsKey);
  if (declared != metadata_.end()) {
    Napi::Value list = ParseJson(env, declared->second, "the '" + std::string(kOutputsKey) + "' metadata of '" + path() + "'");
    if (list.IsArray()) outputs = list.As<Napi::Array>().Length();
  }
  std::string returned = "Tensor";
  if (!single_output_) {
    returned = "Tuple[";
    for (size_t i = 0; i < outputs; ++i) returned += (i ? ", " : "") + std::string("Tensor");
    returned += "]";
  }
  signature_.text += ") -> " + returned;
  signature_.returns.push_back(returned);
}

ForwardCall AotiModel::Decode(const Napi::Value& inputs) const {
  std::vector<at::Tensor> tensors(inputs_.size());
  std::vector<bool> given(inputs_.size(), false);
  if (inputs.IsArray()) {
    Napi::Array array = inputs.As<Napi::Array>();
    if (array.Length() != inputs_.size()) {
      Bad("forward takes " + std::to_string(inputs_.size()) + " input(s), got " + std::to_string(array.Length()));
    }
    for (uint32_t i = 0; i < array.Length(); ++i) {
      tensors[i] = DecodeTensor(array.Get(i), "input " + std::to_string(i) + " ('" + inputs_[i].name + "')");
      given[i] = true;
    }
  } else if (inputs.IsObject() && !IsTensorObject(inputs)) {
    Napi::Object named = inputs.As<Napi::Object>();
    Napi::Array keys = named.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      const std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
      size_t index = inputs_.size();
      for (size_t i = 0; i < inputs_.size(); ++i) {
        if (inputs_[i].name == key) index = i;
      }
      if (index == inputs_.size()) {
        std::string names;
        for (size_t i = 0; i < inputs_.size(); ++i) names += (i ? ", " : "") + inputs_[i].name;
        Bad("forward has no input named '" + key + "' (inputs: " + names + ")");
      }
      tensors[index] = DecodeTensor(named.Get(key), "input '" + key + "'");
      given[index] = true;
    }
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (!given[i]) Bad("missing input '" + inputs_[i].name + "' (a .pt2 model takes every input)");
    }
  } else if (inputs.IsUndefined() && inputs_.empty()) {
    // no inputs
  } else {
    Bad("forward expects an array of positional inputs or an object of named inputs");
  }
  Check(tensors);
  ForwardCall call;
  for (auto& tensor : tensors) call.args.emplace_back(std::move(tensor));
  return call;
}

void AotiModel::Check(const std::vector<at::Tensor>& tensors) const {
  std::map<std::string, std::pair<int64_t, std::string>> seen;  // symbol -> (size, where it was seen)
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const InputSpec& spec = inputs_[i];
    const at::Tensor& tensor = tensors[i];
    const std::string what = "input '" + spec.name + "'";
    if (tensor.scalar_type() != spec.dtype) {
      Bad(what + " has dtype " + DTypeName(tensor.scalar_type()).value_or("?") + ", the model expects " + spec.dtype_name);
    }
    if (static_cast<size_t>(tensor.dim()) != spec.min_shape.size()) {
      Bad(what + " has shape " + Shape(tensor.sizes()) + ", the model expects rank " + std::to_string(spec.min_shape.size()));
    }
    for (size_t d = 0; d < spec.min_shape.size(); ++d) {
      const int64_t size = tensor.size(static_cast<int64_t>(d));
      if (size < spec.min_shape[d] || size > spec.max_shape[d]) {
        const std::string bound = spec.min_shape[d] == spec.max_shape[d]
                                      ? "must be " + std::to_string(spec.min_shape[d])
                                      : "is outside the exported bounds " + std::to_string(spec.min_shape[d]) + ".." +
                                            std::to_string(spec.max_shape[d]);
        Bad(what + " has shape " + Shape(tensor.sizes()) + ": dimension " + std::to_string(d) + " (" +
            std::to_string(size) + ") " + bound);
      }
      if (spec.symbols[d].empty()) continue;
      const std::string here = what + " dimension " + std::to_string(d);
      auto [found, inserted] = seen.emplace(spec.symbols[d], std::make_pair(size, here));
      if (!inserted && found->second.first != size) {
        Bad(here + " is " + std::to_string(size) + " but " + found->second.second + " is " +
            std::to_string(found->second.first) + "; the model needs them equal");
      }
    }
  }
}

c10::IValue AotiModel::Run(ForwardCall call) {
  std::vector<at::Tensor> inputs;
  inputs.reserve(call.args.size());
  for (auto& arg : call.args) {
    at::Tensor tensor = arg.toTensor();
    if (tensor.device() != device()) tensor = tensor.to(device());
    inputs.push_back(tensor.contiguous());
  }
  call.args.clear();
  void* stream = nullptr;
#ifdef ATENSPACE_WITH_CUDA
  if (device().is_cuda()) stream = c10::cuda::getCurrentCUDAStream(device().index()).stream();
#endif
  std::vector<at::Tensor> outputs = loader_->run(inputs, stream);
  if (single_output_) {
    if (outputs.size() != 1) {
      throw BindingError(ErrorCode::kForwardFailed,
                         "'" + path() + "' returned " + std::to_string(outputs.size()) + " tensors, its metadata says one");
    }
    return outputs[0];
  }
  std::vector<c10::IValue> elements(outputs.begin(), outputs.end());
  return c10::ivalue::Tuple::create(std::move(elements));
}

}  // namespace atenspace
