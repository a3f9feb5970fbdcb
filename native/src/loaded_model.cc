#include "loaded_model.h"

#include <atomic>

namespace atenspace {

namespace {
std::atomic<int64_t> live_models{0};
}  // namespace

LoadedModel::LoadedModel(std::string path, c10::Device device) : path_(std::move(path)), device_(device) {
  live_models.fetch_add(1);
}
LoadedModel::~LoadedModel() { live_models.fetch_sub(1); }
int64_t LoadedModel::LiveCount() { return live_models.load(); }

}  // namespace atenspace
