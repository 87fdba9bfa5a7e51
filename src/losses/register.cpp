// The loss registry: one line per loss file.
#include "losses/register.h"

namespace barton::losses {

void register_losses(LossRegistry& r) {
  register_dice_losses(r);
  register_focal_loss(r);
  register_tversky_loss(r);
  register_torch_losses(r);
  register_deep_supervision_loss(r);
}

}  // namespace barton::losses
