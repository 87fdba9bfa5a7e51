#pragma once
/// Registration of the transform families into the transform registry (explicit, no static
/// self-registration; docs/architecture.md; docs/adr/0002). Each transform's spec sits beside its
/// factory in its family's file; the argument specs that many transforms share are here.

#include "core/registry.h"
#include "transforms/transform.h"

namespace barton::transforms {

using TransformRegistry = Registry<Transform>;

void register_transforms(TransformRegistry& r);

/// Argument specs shared by the dictionary transforms.
ArgSpec keys_spec();
ArgSpec allow_missing_spec();
ArgSpec meta_keys_spec();
ArgSpec meta_postfix_spec();
ArgSpec prob_spec(const char* default_json = "0.1");
ArgSpec dtype_spec(const char* default_json = "\"float32\"");

/// Short name of ArgType for spec tables.
using A = ArgType;

void register_utility(TransformRegistry& r);
void register_intensity(TransformRegistry& r);
void register_spatial(TransformRegistry& r);
void register_croppad(TransformRegistry& r);
void register_post(TransformRegistry& r);
void register_deepgrow(TransformRegistry& r);
void register_deepedit(TransformRegistry& r);

}  // namespace barton::transforms
