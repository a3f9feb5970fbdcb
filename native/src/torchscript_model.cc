#include "torchscript_model.h"

#include <filesystem>

#include "errors.h"
#include "tensor_codec.h"

namespace atenspace {

namespace {

[[noreturn]] void Bad(const std::string& message) { throw BindingError(ErrorCode::kBadInput, message); }

// JS value -> IValue for an argument declared with `type` in the forward schema.
c10::IValue ToArgument(const Napi::Value& value, const c10::TypePtr& type, const std::string& what) {
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      return DecodeTensor(value, what);
    case c10::TypeKind::OptionalType:
      if (value.IsNull() || value.IsUndefined()) return c10::IValue();
      return ToArgument(value, type->expectRef<c10::OptionalType>().getElementType(), what);
    case c10::TypeKind::IntType: {
      if (value.IsBigInt()) {
        bool lossless = false;
        const int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
        if (!lossless) Bad(what + ": integer out of int64 range");
        return v;
      }
      if (!value.IsNumber()) Bad(what + ": expected an integer");
      const double number = value.As<Napi::Number>().DoubleValue();
      if (number != static_cast<double>(static_cast<int64_t>(number))) Bad(what + ": expected an integer");
      return static_cast<int64_t>(number);
    }
    case c10::TypeKind::FloatType:
    case c10::TypeKind::NumberType:
      if (!value.IsNumber()) Bad(what + ": expected a number");
      return value.As<Napi::Number>().DoubleValue();
    case c10::TypeKind::BoolType:
      if (!value.IsBoolean()) Bad(what + ": expected a boolean");
      return value.As<Napi::Boolean>().Value();
    case c10::TypeKind::StringType:
      if (!value.IsString()) Bad(what + ": expected a string");
      return value.As<Napi::String>().Utf8Value();
    case c10::TypeKind::ListType: {
      if (!value.IsArray()) Bad(what + ": expected an array");
      Napi::Array array = value.As<Napi::Array>();
      const c10::TypePtr element = type->expectRef<c10::ListType>().getElementType();
      if (element->kind() == c10::TypeKind::TensorType) {
        c10::List<at::Tensor> list;
        for (uint32_t i = 0; i < array.Length(); ++i) {
          list.push_back(DecodeTensor(array.Get(i), what + "[" + std::to_string(i) + "]"));
        }
        return list;
      }
      c10::impl::GenericList list(element);
      for (uint32_t i = 0; i < array.Length(); ++i) {
        list.push_back(ToArgument(array.Get(i), element, what + "[" + std::to_string(i) + "]"));
      }
      return list;
    }
    default:
      Bad(what + ": arguments of type " + type->str() + " are not supported by the binding");
  }
}

void MoveToDevice(c10::IValue& value, const c10::Device& device) {
  if (value.isTensor()) {
    value = value.toTensor().to(device);
  } else if (value.isTensorList()) {
    auto list = value.toTensorList();
    for (size_t i = 0; i < list.size(); ++i) list.set(i, list.get(i).to(device));
  }
}

}  // namespace

std::shared_ptr<TorchScriptModel> TorchScriptModel::Load(const std::string& path, c10::Device device) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw BindingError(ErrorCode::kModelNotFound, "no TorchScript file at '" + path + "'");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, device);
  } catch (...) {
    ErrorInfo error = DescribeCurrentException(ErrorCode::kModelLoadFailed);
    if (error.code != ErrorCode::kOutOfMemory) error.code = ErrorCode::kModelLoadFailed;
    throw BindingError(error.code, "cannot load '" + path + "' as TorchScript: " + error.message);
  }
  module.eval();
  if (!module.find_method("forward")) {
    throw BindingError(ErrorCode::kModelLoadFailed, "'" + path + "' has no forward method");
  }
  return std::make_shared<TorchScriptModel>(path, device, std::move(module));
}

TorchScriptModel::TorchScriptModel(std::string path, c10::Device device, torch::jit::Module module)
    : LoadedModel(std::move(path), device), module_(std::move(module)) {
  const c10::FunctionSchema& forward = schema();
  signature_.text = c10::toString(forward);
  for (size_t i = 1; i < forward.arguments().size(); ++i) {  // arguments[0] is self
    const auto& argument = forward.arguments()[i];
    signature_.arguments.push_back(
        {argument.name(), argument.type()->annotation_str(), argument.default_value().has_value()});
  }
  for (const auto& ret : forward.returns()) signature_.returns.push_back(ret.type()->annotation_str());
}

const c10::FunctionSchema& TorchScriptModel::schema() const {
  return module_.get_method("forward").function().getSchema();
}

ForwardCall TorchScriptModel::Decode(const Napi::Value& inputs) const {
  const c10::FunctionSchema& forward = schema();
  const auto& arguments = forward.arguments();  // arguments[0] is self
  const size_t declared = arguments.size() - 1;
  ForwardCall call;
  if (inputs.IsUndefined()) return call;
  if (inputs.IsArray()) {
    Napi::Array array = inputs.As<Napi::Array>();
    if (array.Length() > declared) {
      Bad("forward takes " + std::to_string(declared) + " input(s), got " + std::to_string(array.Length()));
    }
    for (uint32_t i = 0; i < array.Length(); ++i) {
      const auto& argument = arguments[i + 1];
      call.args.push_back(
          ToArgument(array.Get(i), argument.type(), "input " + std::to_string(i) + " ('" + argument.name() + "')"));
    }
  } else if (inputs.IsObject() && !IsTensorObject(inputs)) {
    Napi::Object named = inputs.As<Napi::Object>();
    Napi::Array keys = named.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
      const auto found = forward.argumentIndexWithName(key);
      if (!found || *found == 0) {
        std::string names;
        for (size_t a = 1; a < arguments.size(); ++a) names += (a > 1 ? ", " : "") + arguments[a].name();
        Bad("forward has no input named '" + key + "' (inputs: " + names + ")");
      }
      call.kwargs.emplace(key, ToArgument(named.Get(key), arguments[*found].type(), "input '" + key + "'"));
    }
  } else {
    Bad("forward expects an array of positional inputs or an object of named inputs");
  }
  return call;
}

c10::IValue TorchScriptModel::Run(ForwardCall call) {
  if (!device().is_cpu()) {
    for (auto& arg : call.args) MoveToDevice(arg, device());
    for (auto& [name, arg] : call.kwargs) MoveToDevice(arg, device());
  }
  torch::jit::Method forward = module_.get_method("forward");
  // Checks names, arity and types against the schema before anything runs.
  std::vector<c10::IValue> stack = call.args;
  stack.insert(stack.begin(), module_._ivalue());  // the schema starts with self
  try {
    forward.function().getSchema().checkAndNormalizeInputs(stack, call.kwargs);
  } catch (...) {
    ErrorInfo error = DescribeCurrentException(ErrorCode::kBadInput);
    throw BindingError(ErrorCode::kBadInput, error.message);
  }
  return forward(std::move(call.args), call.kwargs);
}

}  // namespace atenspace
