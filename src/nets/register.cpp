#include "nets/register.h"

namespace barton::nets {
void register_networks(NetworkRegistry& r) { register_unet(r); }
}  // namespace barton::nets
