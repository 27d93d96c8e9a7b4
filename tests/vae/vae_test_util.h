// Shared helpers for the VAE / scheduler / latent tests.
#pragma once

#include <cstdio>
#include <fstream>
#include <string>

#include <unistd.h>

#include "engine/models/vae.h"
#include "tests/engine/golden.h"

namespace onereward::testing {

/// The golden tiny VAE, strictly loaded (every key consumed), in `dtype`.
inline models::AutoencoderKL load_golden_vae(torch::ScalarType dtype = torch::kFloat32) {
  auto cfg = models::VaeConfig::from_json_file(golden_path("pipeline/vae/config.json"));
  models::AutoencoderKL vae(cfg);
  LoadOptions opts;
  opts.placement.dtype = dtype;
  load_module_strict(*vae, WeightStore::open_dir(golden_path("pipeline/vae")), opts);
  vae->eval();
  return vae;
}

/// A scratch file that is removed when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::string& contents, const std::string& suffix = ".json") {
    static int counter = 0;
    path_ = ::testing::TempDir() + "onereward_vae_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) +
            suffix;
    std::ofstream(path_) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace onereward::testing
