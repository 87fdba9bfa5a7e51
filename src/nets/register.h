#pragma once
/// Registration of the networks (specs in the catalogue, mmar/planned_components.cpp).
#include "core/registry.h"
#include "nets/network.h"

namespace barton::nets {
using NetworkRegistry = Registry<Network>;
void register_networks(NetworkRegistry& r);
void register_unet(NetworkRegistry& r);
void register_basic_unet(NetworkRegistry& r);
void register_segresnet(NetworkRegistry& r);
void register_dynunet(NetworkRegistry& r);
void register_attention_unet(NetworkRegistry& r);
}  // namespace barton::nets
