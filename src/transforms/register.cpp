#include "transforms/register.h"

namespace barton::transforms {

void register_transforms(TransformRegistry& r) {
  register_utility(r);
  register_intensity(r);
  register_spatial(r);
  register_croppad(r);
  register_post(r);
}

}  // namespace barton::transforms
