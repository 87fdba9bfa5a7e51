// NIfTI-1 / NIfTI-2 through the reference nifti_clib (libnifti2). .nii and .nii.gz are read
// into memory (gzip inflated by libdeflate, 2-3x faster than zlib), the header is converted by
// libnifti2, and the voxels are taken at vox_offset. .hdr/.img pairs go through nifti_image_read.

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nifti/nifti2_io.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/strings.h"
#include "io/internal/formats.h"

namespace barton::io::internal {

namespace {

struct NimDeleter {
  void operator()(nifti_image* p) const { nifti_image_free(p); }
};
using NimPtr = std::unique_ptr<nifti_image, NimDeleter>;

struct DtypeInfo {
  int code;
  const char* name;
  at::ScalarType tensor;
  int bytes;
};

// NIfTI datatype codes and how they land in a tensor. LibTorch 1.13 has no uint16/32/64.
const DtypeInfo kDtypes[] = {
    {NIFTI_TYPE_UINT8, "uint8", at::kByte, 1},      {NIFTI_TYPE_INT8, "int8", at::kChar, 1},
    {NIFTI_TYPE_INT16, "int16", at::kShort, 2},     {NIFTI_TYPE_UINT16, "uint16", at::kInt, 2},
    {NIFTI_TYPE_INT32, "int32", at::kInt, 4},       {NIFTI_TYPE_UINT32, "uint32", at::kLong, 4},
    {NIFTI_TYPE_INT64, "int64", at::kLong, 8},      {NIFTI_TYPE_UINT64, "uint64", at::kLong, 8},
    {NIFTI_TYPE_FLOAT32, "float32", at::kFloat, 4}, {NIFTI_TYPE_FLOAT64, "float64", at::kDouble, 8},
};

const DtypeInfo* dtype_by_code(int code) {
  for (const auto& d : kDtypes) {
    if (d.code == code) return &d;
  }
  return nullptr;
}

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

// Element-wise byte swap in place.
void swap_bytes(char* data, std::size_t count, int width) {
  if (width == 2) nifti_swap_2bytes(count, data);
  if (width == 4) nifti_swap_4bytes(count, data);
  if (width == 8) nifti_swap_8bytes(count, data);
}

// Raw little/big-endian element buffer -> tensor of the mapped dtype, shape [T, K, J, I] in
// C order (which is the file's I-fastest order).
at::Tensor buffer_to_tensor(const char* data,
                            const DtypeInfo& dt,
                            const std::vector<int64_t>& shape,
                            bool swap) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  std::vector<char> tmp;
  if (swap) {
    tmp.assign(data, data + n * dt.bytes);
    swap_bytes(tmp.data(), static_cast<std::size_t>(n), dt.bytes);
    data = tmp.data();
  }
  at::Tensor out;
  switch (dt.code) {
    case NIFTI_TYPE_UINT16: {
      out = at::empty(shape, at::kInt);
      auto* dst = out.data_ptr<int32_t>();
      const auto* src = reinterpret_cast<const uint16_t*>(data);
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
      return out;
    }
    case NIFTI_TYPE_UINT32: {
      out = at::empty(shape, at::kLong);
      auto* dst = out.data_ptr<int64_t>();
      const auto* src = reinterpret_cast<const uint32_t*>(data);
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
      return out;
    }
    default:
      out = at::empty(shape, dt.tensor);
      std::memcpy(out.data_ptr(), data, static_cast<std::size_t>(n) * dt.bytes);
      return out;
  }
}

// nibabel's fallback affine (no qform, no sform): zooms on the diagonal, x flipped, the
// centre voxel at the origin (nibabel.affines / AnalyzeHeader.get_base_affine).
Affine base_affine(const nifti_image* nim) {
  Affine a = identity_affine();
  const int64_t dims[3] = {nim->nx, nim->ny, nim->nz};
  const double zooms[3] = {nim->dx, nim->dy, nim->dz};
  for (int r = 0; r < 3; ++r) {
    const double z = (r == 0 ? -1.0 : 1.0) * (zooms[r] == 0 ? 1.0 : zooms[r]);
    const int64_t n = (r < nim->ndim) ? std::max<int64_t>(dims[r], 1) : 1;
    a[r * 4 + r] = z;
    a[r * 4 + 3] = -(static_cast<double>(n) - 1.0) / 2.0 * z;
  }
  return a;
}

Affine from_dmat(const nifti_dmat44& m) {
  Affine a{};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) a[r * 4 + c] = m.m[r][c];
  return a;
}

nifti_dmat44 to_dmat(const Affine& a) {
  nifti_dmat44 m;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) m.m[r][c] = a[r * 4 + c];
  return m;
}

// Builds the Image from a converted header and the voxel bytes.
/// Elements of one (I x K) plane, transposed in 32 x 32 tiles: out[k * out_stride + i] =
/// in[i * in_stride + k].
template <typename T>
void transpose_plane(
    const T* in, T* out, int64_t ni, int64_t nk, int64_t in_stride, int64_t out_stride) {
  constexpr int64_t kTile = 32;
  for (int64_t i0 = 0; i0 < ni; i0 += kTile)
    for (int64_t k0 = 0; k0 < nk; k0 += kTile) {
      const int64_t i1 = std::min(ni, i0 + kTile), k1 = std::min(nk, k0 + kTile);
      for (int64_t k = k0; k < k1; ++k)
        for (int64_t i = i0; i < i1; ++i) out[k * out_stride + i] = in[i * in_stride + k];
    }
}

template <typename T>
void reverse_axes(
    const at::Tensor& src, at::Tensor& dst, int64_t c, int64_t ni, int64_t nj, int64_t nk) {
  const T* in = static_cast<const T*>(src.data_ptr());
  T* out = static_cast<T*>(dst.data_ptr());
  at::parallel_for(0, c * nj, 1, [&](int64_t b, int64_t e) {
    for (int64_t cj = b; cj < e; ++cj) {
      const int64_t ch = cj / nj, j = cj % nj;
      // in[ch][i][j][k] = in + ((ch * ni + i) * nj + j) * nk + k
      // out[ch][k][j][i] = out + ((ch * nk + k) * nj + j) * ni + i
      transpose_plane(in + (ch * ni * nj + j) * nk, out + (ch * nk * nj + j) * ni, ni, nk, nj * nk,
                      nj * ni);
    }
  });
}

/// [C, A, B, D] -> [C, D, B, A] (or [C, A, B] -> [C, B, A]), contiguous: Barton's [C, I, J, K]
/// to the file's voxel order and back. A tiled transpose: PyTorch's copy of the permuted tensor
/// walks one side with a stride of a whole plane (0.2-0.3 s for a 512x512x100 label on 2 cores,
/// most of a served click's write).
at::Tensor reverse_spatial_axes(const at::Tensor& data) {
  const auto x = data.contiguous();
  const int64_t c = x.size(0), ni = x.size(1);
  const int64_t nj = x.dim() == 4 ? x.size(2) : 1, nk = x.dim() == 4 ? x.size(3) : x.size(2);
  auto out = at::empty(
      x.dim() == 4 ? std::vector<int64_t>{c, nk, nj, ni} : std::vector<int64_t>{c, nk, ni},
      x.options());
  switch (x.element_size()) {
    case 1:
      reverse_axes<uint8_t>(x, out, c, ni, nj, nk);
      break;
    case 2:
      reverse_axes<uint16_t>(x, out, c, ni, nj, nk);
      break;
    case 4:
      reverse_axes<uint32_t>(x, out, c, ni, nj, nk);
      break;
    case 8:
      reverse_axes<uint64_t>(x, out, c, ni, nj, nk);
      break;
    default: {
      std::vector<int64_t> perm = {0};
      for (int64_t i = x.dim() - 1; i >= 1; --i) perm.push_back(i);
      return x.permute(perm).contiguous();
    }
  }
  return out;
}

Image make_image(const std::string& path,
                 const nifti_image* nim,
                 const char* voxels,
                 std::size_t available,
                 bool swap) {
  const DtypeInfo* dt = dtype_by_code(nim->datatype);
  if (!dt) {
    throw IoError(path, std::string("unsupported NIfTI datatype ") +
                            nifti_datatype_string(nim->datatype) + " (" +
                            std::to_string(nim->datatype) + ")");
  }
  const int ndim = static_cast<int>(nim->ndim);
  if (ndim < 1 || ndim > 7) throw IoError(path, "invalid dim[0] = " + std::to_string(ndim));
  const int spatial = std::min(ndim, 3) < 2 ? 2 : std::min(ndim, 3);
  std::vector<int64_t> sp;
  const int64_t d[7] = {nim->nx, nim->ny, nim->nz, nim->nt, nim->nu, nim->nv, nim->nw};
  for (int i = 0; i < spatial; ++i) sp.push_back(i < ndim ? std::max<int64_t>(d[i], 1) : 1);
  int64_t channels = 1;
  for (int i = 3; i < ndim; ++i) channels *= std::max<int64_t>(d[i], 1);
  int64_t nvox = channels;
  for (auto s : sp) nvox *= s;
  if (nvox != static_cast<int64_t>(nim->nvox)) {
    throw IoError(path, "header dimensions disagree with the voxel count");
  }
  const std::size_t need = static_cast<std::size_t>(nvox) * dt->bytes;
  if (available < need) {
    throw IoError(
        path, fmt::format("truncated: expected {} bytes of voxel data, found {}", need, available));
  }
  // C-order shape of the file's data: [C, K, J, I] (or [C, J, I]).
  std::vector<int64_t> shape = {channels};
  for (int i = spatial - 1; i >= 0; --i) shape.push_back(sp[i]);
  at::Tensor t = buffer_to_tensor(voxels, *dt, shape, swap);
  // -> [C, I, J, K]
  t = reverse_spatial_axes(t);

  Image img;
  img.source = path;
  img.file_dtype = dt->name;
  img.meta["format"] =
      nim->nifti_type == NIFTI_FTYPE_NIFTI2_1 || nim->nifti_type == NIFTI_FTYPE_NIFTI2_2
          ? "NIfTI-2"
          : (nim->nifti_type == NIFTI_FTYPE_ANALYZE ? "ANALYZE-7.5" : "NIfTI-1");
  img.meta["qform_code"] = std::to_string(nim->qform_code);
  img.meta["sform_code"] = std::to_string(nim->sform_code);
  if (nim->descrip[0]) img.meta["descrip"] = std::string(nim->descrip, strnlen(nim->descrip, 80));

  // Intensity scaling as nibabel applies it: slope 0 or NaN means "no scaling".
  const double slope = nim->scl_slope, inter = nim->scl_inter;
  if (std::isfinite(slope) && slope != 0.0 &&
      !(slope == 1.0 && (inter == 0.0 || !std::isfinite(inter)))) {
    t = t.to(at::kFloat).mul_(slope).add_(std::isfinite(inter) ? inter : 0.0);
    img.file_dtype = "float32";
    img.meta["scl_slope"] = fmt::format("{}", slope);
    img.meta["scl_inter"] = fmt::format("{}", inter);
  }
  img.data = t;

  if (nim->sform_code > 0) {
    img.affine = from_dmat(nim->sto_xyz);
  } else if (nim->qform_code > 0) {
    img.affine = from_dmat(nim->qto_xyz);
  } else {
    img.affine = base_affine(nim);
  }
  if (spatial == 2) {
    // Keep the in-plane part; the third voxel axis does not exist.
    img.affine[2 * 4 + 2] = img.affine[2 * 4 + 2] == 0 ? 1 : img.affine[2 * 4 + 2];
  }
  return img;
}

// Checks the fields libnifti2 trusts before it converts a header: dim[0] and every used dim,
// and a voxel count that fits in 63 bits. libnifti2 walks dim[] by dim[0] and multiplies the
// dims unchecked (a fuzzed NIfTI-2 header with dim[0] = 100671593 overflowed its stack).
// `dim` is in native byte order.
void check_header_dims(const std::string& path, const int64_t dim[8]) {
  if (dim[0] < 1 || dim[0] > 7) {
    throw IoError(
        path, "invalid NIfTI header: dim[0] is " + std::to_string(dim[0]) + ", expected 1 to 7");
  }
  constexpr int64_t kMaxVoxels = int64_t{1} << 40;
  int64_t voxels = 1;
  for (int64_t i = 1; i <= dim[0]; ++i) {
    if (dim[i] < 0) {
      throw IoError(path, "invalid NIfTI header: dim[" + std::to_string(i) + "] is " +
                              std::to_string(dim[i]));
    }
    const int64_t n = std::max<int64_t>(dim[i], 1);
    if (voxels > kMaxVoxels / n) {
      throw IoError(path, "invalid NIfTI header: dims hold more than 2^40 voxels");
    }
    voxels *= n;
  }
}

// The header at the start of `bytes`, checked: its magic names the version its size says
// (a 348-byte header with the magic "n+2" made libnifti2 return a wild pointer), and its dims.
template <typename Header>
Header header_from_bytes(const std::string& path, const std::string& bytes, bool swapped) {
  Header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  constexpr bool n2 = sizeof(Header) == 540;
  const int version = NIFTI_VERSION(h);
  if (n2 ? version != 2 : version > 1) {
    throw IoError(path, std::string("invalid NIfTI header: a ") + (n2 ? "540" : "348") +
                            "-byte header with the magic of NIfTI-" + std::to_string(version));
  }
  int64_t dim[8];
  for (int i = 0; i < 8; ++i) {
    int64_t d = h.dim[i];
    if (swapped) {
      if constexpr (sizeof(h.dim[0]) == 8) {
        nifti_swap_8bytes(1, &d);
      } else {
        auto s = h.dim[i];
        nifti_swap_2bytes(1, &s);
        d = s;
      }
    }
    dim[i] = d;
  }
  check_header_dims(path, dim);
  return h;
}

bool has_suffix(const std::string& path, const char* suffix) {
  return ends_with(to_lower(path), suffix);
}

}  // namespace

at::ScalarType tensor_dtype_for(const std::string& file_dtype) {
  const auto* d = dtype_by_name(file_dtype);
  if (!d) throw Error("unknown element type '" + file_dtype + "'");
  return d->tensor;
}

std::string file_dtype_for(at::ScalarType dtype) {
  switch (dtype) {
    case at::kByte:
      return "uint8";
    case at::kChar:
      return "int8";
    case at::kShort:
      return "int16";
    case at::kInt:
      return "int32";
    case at::kLong:
      return "int64";
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kBool:
      return "uint8";
    case at::kHalf:
    case at::kBFloat16:
      return "float32";
    default:
      throw NotSupported(std::string("cannot store tensors of type ") + c10::toString(dtype));
  }
}

Image read_nifti(const std::string& path) {
  nifti_set_debug_level(0);
  if (has_suffix(path, ".hdr") || has_suffix(path, ".img") || has_suffix(path, ".hdr.gz") ||
      has_suffix(path, ".img.gz")) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw IoError(path, "no such file");
    const std::string lower = to_lower(path);
    const bool gz = ends_with(lower, ".gz");
    const std::string stem = path.substr(0, path.size() - (gz ? 7 : 4));
    const std::string hdr = stem + (gz ? ".hdr.gz" : ".hdr"),
                      img = stem + (gz ? ".img.gz" : ".img");
    for (const auto& part : {hdr, img}) {
      if (!std::filesystem::exists(part, ec)) {
        throw IoError(path, "header/image pair is incomplete: " + part + " does not exist");
      }
    }
    NimPtr nim(nifti_image_read(path.c_str(), 1));
    if (!nim || !nim->data) throw IoError(path, "cannot read NIfTI/ANALYZE header/image pair");
    // nifti_image_read has already byte-swapped the data to native order.
    return make_image(path, nim.get(), static_cast<const char*>(nim->data),
                      nim->nvox * static_cast<std::size_t>(nim->nbyper), false);
  }
  std::string bytes = read_file(path);
  if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
      static_cast<unsigned char>(bytes[1]) == 0x8b) {
    bytes = gunzip(path, bytes);
  }
  if (bytes.size() < 4) throw IoError(path, "file too short for a NIfTI header");
  int32_t sizeof_hdr = 0;
  std::memcpy(&sizeof_hdr, bytes.data(), 4);
  int32_t swapped = sizeof_hdr;
  nifti_swap_4bytes(1, &swapped);
  NimPtr nim;
  bool is_n2 = false;
  if (sizeof_hdr == 348 || swapped == 348) {
    if (bytes.size() < sizeof(nifti_1_header)) throw IoError(path, "truncated NIfTI-1 header");
    const auto h = header_from_bytes<nifti_1_header>(path, bytes, sizeof_hdr != 348);
    nim.reset(nifti_convert_n1hdr2nim(h, path.c_str()));
  } else if (sizeof_hdr == 540 || swapped == 540) {
    if (bytes.size() < sizeof(nifti_2_header)) throw IoError(path, "truncated NIfTI-2 header");
    const auto h = header_from_bytes<nifti_2_header>(path, bytes, sizeof_hdr != 540);
    nim.reset(nifti_convert_n2hdr2nim(h, path.c_str()));
    is_n2 = true;
  } else {
    throw IoError(path, "not a NIfTI file (sizeof_hdr is " + std::to_string(sizeof_hdr) +
                            ", expected 348 or 540)");
  }
  if (!nim) throw IoError(path, "invalid NIfTI header");
  const bool swap = nim->byteorder != nifti_short_order();
  const auto offset = static_cast<std::size_t>(nim->iname_offset);
  const std::size_t min_offset = is_n2 ? 544 : 352;
  if (offset < min_offset && nim->nifti_type != NIFTI_FTYPE_ANALYZE) {
    throw IoError(path, "invalid vox_offset " + std::to_string(offset));
  }
  if (offset > bytes.size())
    throw IoError(path, "truncated: vox_offset lies past the end of the file");
  auto img = make_image(path, nim.get(), bytes.data() + offset, bytes.size() - offset, swap);
  img.meta["format"] = is_n2 ? "NIfTI-2" : "NIfTI-1";
  return img;
}

void write_nifti(const Image& image, const std::string& path) {
  const int spatial = image.spatial_dims();
  if (spatial != 2 && spatial != 3) {
    throw IoError(path,
                  "NIfTI writer needs a 2D or 3D image, got " + std::to_string(spatial) + "D");
  }
  std::string name =
      image.file_dtype.empty() ? file_dtype_for(image.data.scalar_type()) : image.file_dtype;
  const DtypeInfo* dt = dtype_by_name(name);
  if (!dt) dt = dtype_by_name(file_dtype_for(image.data.scalar_type()));
  // Keep the file's element type only if the tensor type maps to it without loss.
  if (dt->tensor != image.data.scalar_type()) {
    const auto* direct = dtype_by_name(file_dtype_for(image.data.scalar_type()));
    if (direct) dt = direct;
  }
  const auto sp = image.spatial_shape();
  int64_t dims[8] = {spatial + (image.channels() > 1 ? 2 : 0), 1, 1, 1, 1, 1, 1, 1};
  for (int i = 0; i < spatial; ++i) dims[i + 1] = sp[i];
  if (image.channels() > 1) {
    dims[0] = 4;
    dims[4] = image.channels();
  }
  NimPtr nim(nifti_make_new_nim(dims, dt->code, 0));
  if (!nim) throw IoError(path, "cannot create NIfTI header");
  // Geometry: sform (scanner) and the matching qform, as most tools expect both.
  Affine a = image.affine;
  nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
  nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
  nim->sto_xyz = to_dmat(a);
  nim->sto_ijk = nifti_dmat44_inverse(nim->sto_xyz);
  double qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac;
  nifti_dmat44_to_quatern(nim->sto_xyz, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac);
  nim->quatern_b = qb;
  nim->quatern_c = qc;
  nim->quatern_d = qd;
  nim->qoffset_x = qx;
  nim->qoffset_y = qy;
  nim->qoffset_z = qz;
  nim->qfac = qfac;
  nim->dx = nim->pixdim[1] = dx;
  nim->dy = nim->pixdim[2] = dy;
  nim->dz = nim->pixdim[3] = dz;
  nim->qto_xyz = nifti_quatern_to_dmat44(qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac);
  nim->qto_ijk = nifti_dmat44_inverse(nim->qto_xyz);
  nim->xyz_units = NIFTI_UNITS_MM;
  nim->scl_slope = 0;
  nim->scl_inter = 0;

  // Voxels in file order: [C, I, J, K] -> [C, K, J, I] contiguous.
  const at::Tensor t = reverse_spatial_axes(image.data.to(at::kCPU));
  at::Tensor raw;
  if (dt->code == NIFTI_TYPE_UINT16 || dt->code == NIFTI_TYPE_UINT32) {
    // Stored widened in the tensor; narrow back with a range check.
    const auto mn = t.min().item<int64_t>(), mx = t.max().item<int64_t>();
    const int64_t hi = dt->code == NIFTI_TYPE_UINT16 ? 65535 : 4294967295LL;
    if (mn < 0 || mx > hi) {
      dt = dtype_by_name(file_dtype_for(image.data.scalar_type()));
      nim->datatype = dt->code;
      nim->nbyper = dt->bytes;
      raw = t.contiguous();
    } else {
      auto src = t.to(at::kLong).contiguous();
      const int64_t n = src.numel();
      raw = at::empty({n * dt->bytes}, at::kByte);
      auto* s = src.data_ptr<int64_t>();
      if (dt->code == NIFTI_TYPE_UINT16) {
        auto* d = reinterpret_cast<uint16_t*>(raw.data_ptr<uint8_t>());
        for (int64_t i = 0; i < n; ++i) d[i] = static_cast<uint16_t>(s[i]);
      } else {
        auto* d = reinterpret_cast<uint32_t*>(raw.data_ptr<uint8_t>());
        for (int64_t i = 0; i < n; ++i) d[i] = static_cast<uint32_t>(s[i]);
      }
    }
  } else {
    raw = t.to(dt->tensor).contiguous();
  }
  const std::size_t nbytes = static_cast<std::size_t>(raw.numel()) * raw.element_size();

  const bool need_n2 = sp[0] > 32767 || (spatial > 1 && sp[1] > 32767) ||
                       (spatial > 2 && sp[2] > 32767) || image.channels() > 32767;
  // The header and its padding to vox_offset, then the voxels.
  std::string head;
  if (!need_n2) {
    nifti_1_header h;
    if (nifti_convert_nim2n1hdr(nim.get(), &h) != 0)
      throw IoError(path, "cannot build NIfTI-1 header");
    std::memcpy(h.magic, "n+1\0", 4);
    h.vox_offset = 352;
    head.assign(352, '\0');
    std::memcpy(head.data(), &h, sizeof h);
  } else {
    nifti_2_header h;
    if (nifti_convert_nim2n2hdr(nim.get(), &h) != 0)
      throw IoError(path, "cannot build NIfTI-2 header");
    std::memcpy(h.magic, "n+2\0\r\n\032\n", 8);
    h.vox_offset = 544;
    head.assign(544, '\0');
    std::memcpy(head.data(), &h, sizeof h);
  }
  const std::string_view body(static_cast<const char*>(raw.data_ptr()), nbytes);
  std::string out;
  if (has_suffix(path, ".gz")) {
    // Label maps (one byte a voxel, mostly background): an all-zero block is compressed once
    // (gzip_blocks), what a served click waits for (docs/performance.md).
    out = dt->bytes == 1 ? gzip_blocks(head, body, 1) : gzip(std::string(head).append(body));
  } else {
    out.reserve(head.size() + body.size());
    out.append(head).append(body);
  }
  write_file_atomic(path, out);
}

}  // namespace barton::io::internal
