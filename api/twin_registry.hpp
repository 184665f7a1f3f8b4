// The twins a server holds (and their surrogate bundles), looked up by twin name.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/fem/fem_model.hpp"
#include "surrogate/surrogate.hpp"

namespace doppel::api {

class TwinRegistry {
 public:
  struct Entry {
    std::string id;
    std::string twin_path, bundle_path;
    std::unique_ptr<FemModel> model;
    std::unique_ptr<Surrogate> surrogate;
    std::mutex fem;  // one FE batch per twin at a time (it already uses every core)
  };
  // Loads the twins, then each bundle onto the twin it was trained for (meta.json names it).
  // Throws InvalidInput naming the file on a bad twin or bundle, or a bundle for no twin.
  void load(const std::vector<std::string>& twins, const std::vector<std::string>& bundles,
            const std::string& device);
  const std::vector<std::unique_ptr<Entry>>& entries() const { return entries_; }
  Entry& find(const std::string& id) const;      // HttpError 404 when unknown
  Entry* try_find(const std::string& id) const;  // null when unknown

 private:
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace doppel::api
