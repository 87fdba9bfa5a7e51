#pragma once
/// Recording what spatial transforms did (for Invertd) and undoing it.

#include <string>
#include <vector>

#include "transforms/sample.h"

namespace barton::transforms {

/// Appends a trace entry to `item` for a transform that turned (orig_shape, orig_affine) into the
/// item's current state.
void record(ImageItem& item,
            const std::string& transform,
            const std::vector<int64_t>& orig_shape,
            const Affine& orig_affine,
            const std::string& mode = "",
            const std::string& padding = "");

/// Undoes the entries of `trace` in reverse order on data that currently lies on the grid
/// `current_affine` (MONAI's Invertd): each step resamples back to the step's input grid, with
/// nearest interpolation when `nearest`, else the step's own mode; cropped-away regions become 0.
/// Returns the data and affine on the original grid (float32).
std::pair<at::Tensor, Affine> invert_trace(const at::Tensor& data,
                                           const Affine& current_affine,
                                           const std::vector<TraceEntry>& trace,
                                           bool nearest);

}  // namespace barton::transforms
