#pragma once
// One register function per loss file; register_losses (register.cpp) calls each.

#include "losses/loss.h"

namespace barton::losses {

void register_dice_losses(LossRegistry& r);
void register_focal_loss(LossRegistry& r);
void register_tversky_loss(LossRegistry& r);
void register_torch_losses(LossRegistry& r);
void register_deep_supervision_loss(LossRegistry& r);

}  // namespace barton::losses
