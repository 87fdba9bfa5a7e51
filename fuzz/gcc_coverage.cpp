// Coverage for libFuzzer from gcc-built code. gcc's -fsanitize-coverage=trace-pc calls
// __sanitizer_cov_trace_pc() in every basic block; clang's libFuzzer runtime does not take that
// callback, but it reads every byte of the __libfuzzer_extra_counters section as a coverage
// counter. This bridge hashes the calling block's address into 64 Ki saturating counters there.
// (Built only for BARTON_FUZZ with gcc; clang builds use -fsanitize=fuzzer directly.)
#include <cstddef>
#include <cstdint>

namespace {
constexpr std::size_t kCounters = std::size_t{1} << 16;
}

extern "C" {

__attribute__((section("__libfuzzer_extra_counters"), used))
uint8_t barton_fuzz_counters[kCounters];

__attribute__((no_sanitize_coverage, no_sanitize_address)) void __sanitizer_cov_trace_pc() {
  const auto pc = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  const auto h = static_cast<std::uint32_t>((pc ^ (pc >> 15)) * 0x9E3779B1u);
  std::uint8_t& c = barton_fuzz_counters[(h >> 16) & (kCounters - 1)];
  if (c != 255) ++c;
}

}  // extern "C"
