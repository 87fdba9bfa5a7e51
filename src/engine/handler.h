#pragma once
/// The handler interface: hooks into a training or evaluation loop (ignite's event handlers).

#include <string>

#include "core/registry.h"

namespace barton::engine {

class Engine;

/// Hooks into a loop. Handlers run in config order, except that CheckpointLoader runs first.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual std::string name() const = 0;
  virtual void started(Engine& e) { (void)e; }
  virtual void epoch_started(Engine& e) { (void)e; }
  virtual void iteration_completed(Engine& e) { (void)e; }
  virtual void epoch_completed(Engine& e) { (void)e; }
  virtual void completed(Engine& e) { (void)e; }
  /// Runs before others on "started" when true (checkpoint loading).
  virtual bool early() const { return false; }
  /// Runs on rank 0 only in data-parallel training (it logs or writes files: Clara's "rank": 0).
  virtual bool rank0_only() const { return false; }
};

using HandlerRegistry = Registry<Handler>;
/// The built-in handlers (handlers.cpp).
void register_handlers(HandlerRegistry& r);

}  // namespace barton::engine
