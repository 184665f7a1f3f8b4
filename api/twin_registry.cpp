#include "api/twin_registry.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

#include "api/errors.hpp"
#include "spec/errors.hpp"

namespace doppel::api {

void TwinRegistry::load(const std::vector<std::string>& twins, const std::vector<std::string>& bundles,
                        const std::string& device) {
  for (const auto& path : twins) {
    auto e = std::make_unique<Entry>();
    e->twin_path = path;
    e->model = std::make_unique<FemModel>(spec::load_twin(path));
    e->id = e->model->twin().name;
    for (const auto& other : entries_)
      DOPPEL_VERIFY(other->id != e->id, "--twin", "two twins are named '" + e->id + "'");
    entries_.push_back(std::move(e));
  }
  for (const auto& dir : bundles) {
    std::string name;
    try {
      name = nlohmann::json::parse(std::ifstream(dir + "/meta.json")).at("twin").at("name").get<std::string>();
    } catch (const std::exception&) {
      throw InvalidInput("--bundle", dir + " is not a doppel bundle (no readable meta.json naming its twin)");
    }
    Entry* target = try_find(name);
    DOPPEL_VERIFY(target, "--bundle", dir + " was trained for twin '" + name + "', which this server does not hold");
    DOPPEL_VERIFY(!target->surrogate, "--bundle", "two bundles for twin '" + name + "'");
    target->bundle_path = dir;
    target->surrogate = Surrogate::load(dir, *target->model, device);
  }
}

TwinRegistry::Entry* TwinRegistry::try_find(const std::string& id) const {
  for (const auto& e : entries_)
    if (e->id == id) return e.get();
  return nullptr;
}

TwinRegistry::Entry& TwinRegistry::find(const std::string& id) const {
  if (Entry* e = try_find(id)) return *e;
  throw HttpError(404, "not_found", "no twin '" + id + "'", "id");
}

}  // namespace doppel::api
