#include "transforms/register.h"

namespace barton::transforms {

ArgSpec keys_spec() {
  return req("keys", ArgType::kStrings, "Keys of the sample to transform.");
}

ArgSpec allow_missing_spec() {
  return opt("allow_missing_keys", ArgType::kBool, "false", "Skip keys absent from the sample.");
}

ArgSpec meta_keys_spec() {
  return opt("meta_keys", ArgType::kStrings, "null", "Metadata keys (MONAI compatibility).");
}

ArgSpec meta_postfix_spec() {
  return opt("meta_key_postfix", ArgType::kString, "\"meta_dict\"",
             "Metadata key postfix (MONAI compatibility).");
}

ArgSpec prob_spec(const char* default_json) {
  return opt("prob", ArgType::kFloat, default_json, "Probability of applying the transform.");
}

ArgSpec dtype_spec(const char* default_json) {
  return opt("dtype", ArgType::kStrings, default_json, "Output element type.");
}

void register_transforms(TransformRegistry& r) {
  register_utility(r);
  register_intensity(r);
  register_spatial(r);
  register_croppad(r);
  register_post(r);
  register_deepgrow(r);
  register_deepedit(r);
}

}  // namespace barton::transforms
