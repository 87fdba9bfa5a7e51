// FgBgMap: the foreground/background voxel sets of the label-driven patch samplers.
#include "transforms/croppad/fg_bg_map.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#ifdef __SSE2__
#include <immintrin.h>
#endif

#include "core/errors.h"

namespace barton::transforms {

void FgBgMap::resize(int64_t n) {
  const auto words = static_cast<std::size_t>((n + 63) / 64);
  for (auto& b : bits) b.assign(words, 0);
}

void FgBgMap::finish() {
  for (int c = 0; c < 2; ++c) {
    const auto& w = bits[c];
    auto& bc = block_count[c];
    bc.assign((w.size() + kBlockWords - 1) / kBlockWords, 0);
    count[c] = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const int64_t p = __builtin_popcountll(w[i]);
      bc[i / kBlockWords] += p;
      count[c] += p;
    }
  }
}

int64_t FgBgMap::kth(int c, int64_t k) const {
  if (c < 0 || c > 1 || k < 0 || k >= count[c]) {
    throw InternalError("FgBgMap::kth: index past the class count");
  }
  const auto& w = bits[c];
  const auto& bc = block_count[c];
  std::size_t block = 0;
  for (; block < bc.size() && k >= bc[block]; ++block) k -= bc[block];
  if (block == bc.size()) throw InternalError("FgBgMap::kth: index past the class count");
  for (std::size_t i = block * kBlockWords; i < w.size(); ++i) {
    uint64_t word = w[i];
    const int64_t p = __builtin_popcountll(word);
    if (k >= p) {
      k -= p;
      continue;
    }
    for (; k > 0; --k) word &= word - 1;  // drop the lowest k set bits
    return static_cast<int64_t>(i) * 64 + __builtin_ctzll(word);
  }
  throw InternalError("FgBgMap::kth: index past the class count");
}

at::Tensor FgBgMap::indices(int c) const {
  auto out = at::empty({count[c]}, at::kLong);
  auto* o = out.data_ptr<int64_t>();
  for (std::size_t i = 0; i < bits[c].size(); ++i) {
    for (uint64_t word = bits[c][i]; word != 0; word &= word - 1)
      *o++ = static_cast<int64_t>(i) * 64 + __builtin_ctzll(word);
  }
  return out;
}

FgBgMap FgBgMap::from_classes(const uint8_t* cls, int64_t n) {
  FgBgMap m;
  m.resize(n);
  at::parallel_for(0, static_cast<int64_t>(m.bits[0].size()), 1024, [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      uint64_t fg = 0, bg = 0;
      const uint8_t* c = cls + w * 64;
      const int64_t end = std::min<int64_t>(64, n - w * 64);
      int64_t j = 0;
#ifdef __SSE2__
      const __m128i one = _mm_set1_epi8(1), two = _mm_set1_epi8(2);
      for (; j + 16 <= end; j += 16) {  // 16 voxels per compare; movemask gives their bits
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + j));
        fg |=
            static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, one))))
            << j;
        bg |=
            static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, two))))
            << j;
      }
#endif
      for (; j < end; ++j) {
        fg |= static_cast<uint64_t>(c[j] == 1) << j;
        bg |= static_cast<uint64_t>(c[j] == 2) << j;
      }
      m.bits[0][static_cast<std::size_t>(w)] = fg;
      m.bits[1][static_cast<std::size_t>(w)] = bg;
    }
  });
  m.finish();
  return m;
}

FgBgMap fg_bg_map(const at::Tensor& label, const at::Tensor* image, double image_threshold) {
  const int64_t n = label.numel() / std::max<int64_t>(1, label.size(0));
  auto cls = at::empty({n}, at::kByte);
  auto* c = cls.data_ptr<uint8_t>();
  const bool rows =
      label.dim() >= 2 && label.size(0) == 1 && label.scalar_type() == at::kFloat &&
      label.stride(-1) == 1 &&
      (image == nullptr || (image->size(0) == 1 && image->scalar_type() == at::kFloat &&
                            image->stride(-1) == 1 && image->sizes() == label.sizes()));
  if (rows && n > 0) {
    // The usual case (one-channel float label and image, cropped views included), row by row with
    // no temporaries but the class bytes.
    const int64_t width = label.size(-1), nrows = n / width;
    const auto thr = static_cast<float>(image_threshold);
    auto row_start = [](const at::Tensor& t,
                        int64_t r) {  // row r over the axes between channel and last
      int64_t offset = 0;
      for (int64_t d = t.dim() - 2; d >= 1; --d) {
        offset += (r % t.size(d)) * t.stride(d);
        r /= t.size(d);
      }
      return t.data_ptr<float>() + offset;
    };
    at::parallel_for(0, nrows, std::max<int64_t>(1, 16384 / width), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* l = row_start(label, r);
        uint8_t* out = c + r * width;
        if (image == nullptr) {
          for (int64_t j = 0; j < width; ++j) out[j] = l[j] != 0.0f ? 1 : 2;
        } else {
          const float* im = row_start(*image, r);
          for (int64_t j = 0; j < width; ++j) out[j] = l[j] != 0.0f ? 1 : (im[j] > thr ? 2 : 0);
        }
      }
    });
  } else {
    auto lab = label.size(0) > 1 ? label.slice(0, 1) : label;
    const auto fg = (lab != 0).any(0).reshape(-1);
    const auto bg =
        image ? (*image > image_threshold).any(0).reshape(-1) & fg.logical_not() : fg.logical_not();
    cls.copy_(fg.to(at::kByte) + bg.to(at::kByte) * 2);
  }
  return FgBgMap::from_classes(c, n);
}

std::pair<at::Tensor, at::Tensor> fg_bg_indices(const at::Tensor& label,
                                                const at::Tensor* image,
                                                double image_threshold) {
  const auto m = fg_bg_map(label, image, image_threshold);
  return {m.indices(0), m.indices(1)};
}

}  // namespace barton::transforms
