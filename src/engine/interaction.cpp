#include "engine/interaction.h"

#include <torch/torch.h>

#include "core/errors.h"

namespace barton::engine {

void Interaction::run(data::Batch& batch,
                      const Inferer* inferer,
                      const Predictor& predictor,
                      const std::function<void(bool)>& set_mode,
                      bool restore_train,
                      torch::Device device,
                      uint64_t seed) const {
  if (deepgrow_probability < 1.0) {
    transforms::Rng decide(transforms::mix_seed(seed, 0x5eed));
    if (!(decide.uniform() < deepgrow_probability)) {
      // Automatic mode: no clicks. (MONAI zeroes only the batch's first item; at MONAI Label's
      // batch size of 1 that is the same.)
      auto& image = batch.tensors.at("image");
      image = image.clone();
      image.slice(1, 1).zero_();
      return;
    }
  }
  if (max_interactions <= 0 || !transforms) return;
  if (set_mode) set_mode(false);
  for (int64_t j = 0; j < max_interactions; ++j) {
    at::Tensor pred;
    {
      torch::NoGradGuard no_grad;
      const auto image = batch.tensors.at("image").to(device);
      pred = inferer ? inferer->infer(image, predictor) : predictor(image);
      pred = pred.to(torch::kCPU, torch::kFloat);
    }
    const double p =
        train ? 1.0 - static_cast<double>(j) / static_cast<double>(max_interactions) : 1.0;
    auto items = std::move(batch.items);
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto& s = items[i];
      transforms::ImageItem item;
      item.data = pred[static_cast<int64_t>(i)];
      if (s.has("label") && s.is_image("label")) item.affine = s.image("label").affine;
      s.set("pred", std::move(item));
      s.set(key_probability, p);
      transforms::Rng rng(transforms::mix_seed(seed, static_cast<uint64_t>(j * 1000003 + i)));
      transforms->apply(s, rng);
    }
    batch = data::collate(std::move(items));
  }
  if (set_mode && restore_train) set_mode(true);
}

}  // namespace barton::engine
