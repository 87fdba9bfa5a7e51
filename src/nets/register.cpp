#include "nets/register.h"

namespace barton::nets {
void register_networks(NetworkRegistry& r) {
  register_unet(r);
  register_basic_unet(r);
  register_segresnet(r);
  register_dynunet(r);
  register_attention_unet(r);
}
}  // namespace barton::nets
