// Pipeline benchmark (Barton side): the spleen config's deterministic chain over every case, then
// random patch sampling from the cached results, timed over repeats. bench/pipeline_bench.py runs
// the same work in Python (python3-torch, MONAI's definitions); bench/run.sh runs both side by
// side.
//
// usage: pipeline_bench DATASET_JSON [--repeats R] [--epochs E] [--workers W] [--threads T]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "core/config.h"
#include "core/cpu_allocator.h"
#include "data/dataset.h"
#include "mmar/registries.h"
#include <sys/resource.h>

using namespace barton;

namespace {

std::shared_ptr<transforms::Compose> chain(const char* json) {
  const auto list = ConfigNode::parse(json, "bench.json");
  std::vector<std::shared_ptr<const transforms::Transform>> steps;
  for (std::size_t i = 0; i < list.size(); ++i)
    steps.push_back(builtin_registries().transforms.create(list.at(i)));
  return std::make_shared<transforms::Compose>(std::move(steps));
}

// The deterministic prefix of Clara's config_train_Unet.json pre_transforms, then its random part.
const char* kChain = R"([
  {"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
  {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
  {"name": "Spacingd", "args": {"keys": ["image", "label"], "pixdim": [1.0, 1.0, 1.0], "mode": ["bilinear", "nearest"]}},
  {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0, "b_max": 1.0, "clip": true}},
  {"name": "CropForegroundd", "args": {"keys": ["image", "label"], "source_key": "image"}},
  {"name": "RandCropByPosNegLabeld", "args": {"keys": ["image", "label"], "label_key": "label", "spatial_size": [96, 96, 96],
      "pos": 1, "neg": 1, "num_samples": 4, "image_key": "image", "image_threshold": 0}},
  {"name": "RandShiftIntensityd", "args": {"keys": "image", "offsets": 0.1, "prob": 0.5}},
  {"name": "ToTensord", "args": {"keys": ["image", "label"]}}
])";

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: pipeline_bench DATASET_JSON [--repeats R] [--epochs E] [--workers W] "
                 "[--threads T]\n");
    return 2;
  }
  int repeats = 3, epochs = 2, workers = 2, threads = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--epochs")) epochs = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--workers")) workers = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  }
  tune_allocator();
  at::set_num_threads(threads);
  try {
    const auto items = data::load_datalist(argv[1], "training");
    auto c = chain(kChain);
    std::vector<double> det_times, rand_times;
    int64_t patches = 0;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      data::CacheOptions o;
      o.num_workers = workers;
      data::CacheDataset ds(items, c, 0, o);
      const auto t1 = std::chrono::steady_clock::now();
      patches = 0;
      for (int e = 0; e < epochs; ++e) {
        for (std::size_t i = 0; i < ds.size(); ++i)
          patches += static_cast<int64_t>(ds.get(i, e).size());
      }
      const auto t2 = std::chrono::steady_clock::now();
      det_times.push_back(std::chrono::duration<double>(t1 - t0).count());
      rand_times.push_back(std::chrono::duration<double>(t2 - t1).count());
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf(
        "{\"impl\": \"barton\", \"cases\": %zu, \"threads\": %d, \"workers\": %d, \"repeats\": %d, "
        "\"deterministic_s\": %.4f, \"deterministic_min_s\": %.4f, \"deterministic_max_s\": %.4f, "
        "\"random_s\": %.4f, \"random_min_s\": %.4f, \"random_max_s\": %.4f, \"patches\": %lld, "
        "\"peak_rss_mb\": %.1f}\n",
        items.size(), threads, workers, repeats, median(det_times),
        *std::min_element(det_times.begin(), det_times.end()),
        *std::max_element(det_times.begin(), det_times.end()), median(rand_times),
        *std::min_element(rand_times.begin(), rand_times.end()),
        *std::max_element(rand_times.begin(), rand_times.end()), static_cast<long long>(patches),
        ru.ru_maxrss / 1024.0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
