#pragma once
/// From a batch and its prediction to per-case samples and metric updates (MONAI's
/// decollate_batch + post transforms + metric iteration), shared by the trainer and the evaluator.

#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "data/loader.h"
#include "engine/metric.h"
#include "transforms/transform.h"

namespace barton::engine {

/// Runs the post transforms on per-case samples built from a batch and the prediction:
/// "pred" takes the image's geometry and history (MONAI's decollate_batch + MetaTensor).
std::vector<transforms::Sample> decollate(const data::Batch& batch,
                                          const at::Tensor& pred,
                                          const transforms::Compose* post,
                                          transforms::Rng& rng);

/// Stacks key `key` of the post-processed samples to [B, C, *spatial].
at::Tensor stack_key(const std::vector<transforms::Sample>& samples, const std::string& key);

/// Spacing (mm) of a sample's image item.
std::vector<double> item_spacing(const transforms::ImageItem& item);

/// The case name of a sample (its origin), "case" when unknown.
std::string case_name(const transforms::Sample& s);

/// Updates every metric with each sample's "pred" and "label". Throws Error naming the case when a
/// key is missing or the shapes differ.
void update_metrics(std::vector<NamedMetric>& metrics,
                    const std::vector<transforms::Sample>& samples);

/// Throws Error naming the case when a batch's label and image differ in spatial shape.
void check_pair(const data::Batch& batch);

}  // namespace barton::engine
