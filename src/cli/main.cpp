// Entry point: the only place that turns exceptions into exit codes. No stack traces for user
// errors.
#include <cstdio>
#include <exception>

#include "cli/cli.h"
#include "core/errors.h"

int main(int argc, char** argv) {
  try {
    return barton::cli::run(argc, argv);
  } catch (const barton::ConfigError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const barton::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const barton::InternalError& e) {
    std::fprintf(stderr, "internal error (please report): %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error (please report): %s\n", e.what());
    return 3;
  }
}
