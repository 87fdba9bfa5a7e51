// MetaImage, NRRD and DICOM series through ITK 5.2 (GDCM). ITK works in LPS; Barton's affines
// are RAS: the conversion happens here and nowhere else.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <ATen/ATen.h>
#include <itkGDCMImageIO.h>
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkImageIOFactory.h>
#include <itkImageSeriesReader.h>
#include <itkMetaDataObject.h>
#include <itkVectorImage.h>

#include "core/errors.h"
#include "core/strings.h"
#include "io/internal/dicom_walk.h"
#include "io/internal/formats.h"

namespace barton::io::internal {

namespace fs = std::filesystem;

namespace {

template <typename T>
at::ScalarType scalar_of() {
  if constexpr (std::is_same_v<T, uint8_t>) return at::kByte;
  if constexpr (std::is_same_v<T, int8_t>) return at::kChar;
  if constexpr (std::is_same_v<T, int16_t>) return at::kShort;
  if constexpr (std::is_same_v<T, int32_t>) return at::kInt;
  if constexpr (std::is_same_v<T, int64_t>) return at::kLong;
  if constexpr (std::is_same_v<T, float>) return at::kFloat;
  if constexpr (std::is_same_v<T, double>) return at::kDouble;
}

// LPS <-> RAS: negate the first two world rows.
Affine flip_xy(Affine a) {
  for (int c = 0; c < 4; ++c) {
    a[0 * 4 + c] = -a[0 * 4 + c];
    a[1 * 4 + c] = -a[1 * 4 + c];
  }
  return a;
}

template <typename ImageType>
Affine affine_of(const ImageType* img) {
  constexpr unsigned D = ImageType::ImageDimension;
  Affine lps = identity_affine();
  const auto& dir = img->GetDirection();
  const auto& sp = img->GetSpacing();
  const auto& org = img->GetOrigin();
  for (unsigned r = 0; r < D; ++r) {
    for (unsigned c = 0; c < D; ++c) lps[r * 4 + c] = dir[r][c] * sp[c];
    lps[r * 4 + 3] = org[r];
  }
  return flip_xy(lps);
}

template <typename ImageType>
void set_geometry(ImageType* img, const Affine& ras, const std::string& path) {
  constexpr unsigned D = ImageType::ImageDimension;
  const Affine lps = flip_xy(ras);
  typename ImageType::DirectionType dir;
  typename ImageType::SpacingType sp;
  typename ImageType::PointType org;
  for (unsigned c = 0; c < D; ++c) {
    double n = 0;
    for (unsigned r = 0; r < D; ++r) n += lps[r * 4 + c] * lps[r * 4 + c];
    n = std::sqrt(n);
    if (n == 0) throw IoError(path, "affine has a zero column; cannot express it as spacing");
    sp[c] = n;
    for (unsigned r = 0; r < D; ++r) dir[r][c] = lps[r * 4 + c] / n;
  }
  for (unsigned r = 0; r < D; ++r) org[r] = lps[r * 4 + 3];
  img->SetDirection(dir);
  img->SetSpacing(sp);
  img->SetOrigin(org);
}

template <typename T, unsigned D>
Image read_typed(const std::string& path) {
  using ImageType = itk::VectorImage<T, D>;
  auto reader = itk::ImageFileReader<ImageType>::New();
  reader->SetFileName(path);
  reader->Update();
  ImageType* img = reader->GetOutput();
  const auto size = img->GetLargestPossibleRegion().GetSize();
  const int64_t comps = img->GetNumberOfComponentsPerPixel();
  // ITK buffer: x fastest, components interleaved -> C-order [Z, Y, X, comps].
  std::vector<int64_t> shape;
  for (int d = static_cast<int>(D) - 1; d >= 0; --d) shape.push_back(static_cast<int64_t>(size[d]));
  shape.push_back(comps);
  int64_t n = 1;
  for (auto s : shape) n *= s;
  at::Tensor t = at::empty(shape, scalar_of<T>());
  std::memcpy(t.data_ptr(), img->GetBufferPointer(), static_cast<std::size_t>(n) * sizeof(T));
  std::vector<int64_t> perm = {static_cast<int64_t>(D)};
  for (int d = static_cast<int>(D) - 1; d >= 0; --d) perm.push_back(d);
  Image out;
  out.data = t.permute(perm).contiguous();
  out.affine = affine_of(img);
  out.source = path;
  return out;
}

template <unsigned D>
Image read_dim(const std::string& path, itk::IOComponentEnum comp) {
  using C = itk::IOComponentEnum;
  switch (comp) {
    case C::UCHAR:
      return read_typed<uint8_t, D>(path);
    case C::CHAR:
      return read_typed<int8_t, D>(path);
    case C::SHORT:
      return read_typed<int16_t, D>(path);
    case C::USHORT:
    case C::INT:
      return read_typed<int32_t, D>(path);
    case C::UINT:
    case C::LONG:
    case C::LONGLONG:
    case C::ULONG:
    case C::ULONGLONG:
      return read_typed<int64_t, D>(path);
    case C::FLOAT:
      return read_typed<float, D>(path);
    case C::DOUBLE:
      return read_typed<double, D>(path);
    default:
      throw IoError(path, "unsupported pixel component type");
  }
}

std::string comp_name(itk::IOComponentEnum comp) {
  using C = itk::IOComponentEnum;
  switch (comp) {
    case C::UCHAR:
      return "uint8";
    case C::CHAR:
      return "int8";
    case C::SHORT:
      return "int16";
    case C::USHORT:
      return "uint16";
    case C::INT:
      return "int32";
    case C::UINT:
      return "uint32";
    case C::FLOAT:
      return "float32";
    case C::DOUBLE:
      return "float64";
    default:
      return "int64";
  }
}

template <typename T, unsigned D>
void write_typed(const Image& image, const std::string& path, const std::string& target) {
  using ImageType = itk::VectorImage<T, D>;
  auto img = ImageType::New();
  typename ImageType::RegionType region;
  typename ImageType::SizeType size;
  const auto sp = image.spatial_shape();
  for (unsigned d = 0; d < D; ++d) size[d] = static_cast<itk::SizeValueType>(sp[d]);
  region.SetSize(size);
  img->SetRegions(region);
  img->SetNumberOfComponentsPerPixel(static_cast<unsigned>(image.channels()));
  img->Allocate();
  set_geometry(img.GetPointer(), image.affine, path);
  // [C, I, J, K] -> [K, J, I, C]
  std::vector<int64_t> perm;
  for (int d = static_cast<int>(D); d >= 1; --d) perm.push_back(d);
  perm.push_back(0);
  at::Tensor t = image.data.to(at::kCPU).permute(perm).to(scalar_of<T>()).contiguous();
  std::memcpy(img->GetBufferPointer(), t.data_ptr(),
              static_cast<std::size_t>(t.numel()) * sizeof(T));
  auto writer = itk::ImageFileWriter<ImageType>::New();
  writer->SetFileName(target);
  writer->SetInput(img);
  writer->SetUseCompression(true);
  writer->Update();
}

template <unsigned D>
void write_dim(const Image& image, const std::string& path, const std::string& target) {
  switch (image.data.scalar_type()) {
    case at::kByte:
    case at::kBool:
      return write_typed<uint8_t, D>(image, path, target);
    case at::kChar:
      return write_typed<int8_t, D>(image, path, target);
    case at::kShort:
      return write_typed<int16_t, D>(image, path, target);
    case at::kInt:
      return write_typed<int32_t, D>(image, path, target);
    case at::kLong:
      return write_typed<int64_t, D>(image, path, target);
    case at::kDouble:
      return write_typed<double, D>(image, path, target);
    default:
      return write_typed<float, D>(image, path, target);
  }
}

std::string meta_string(const itk::MetaDataDictionary& dict, const std::string& tag) {
  std::string v;
  itk::ExposeMetaData<std::string>(dict, tag, v);
  return trim(v);
}

}  // namespace

Image read_itk(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(path, "no such file");
  {
    // GDCM aborts the process on a truncated DICOM file: walk it first (see dicom_walk.h).
    std::ifstream in(path, std::ios::binary);
    std::string head(132, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
    if (starts_like_dicom(head)) {
      walk_dicom_file(path);
      check_gdcm_decodes({path});
    }
  }
  try {
    auto io =
        itk::ImageIOFactory::CreateImageIO(path.c_str(), itk::CommonEnums::IOFileMode::ReadMode);
    if (!io)
      throw IoError(path,
                    "no reader recognises this file (supported: .nii, .nii.gz, .mha, .mhd, .nrrd, "
                    ".nhdr, DICOM folders)");
    io->SetFileName(path);
    io->ReadImageInformation();
    const unsigned dims = io->GetNumberOfDimensions();
    const auto comp = io->GetComponentType();
    Image img;
    if (dims == 2)
      img = read_dim<2>(path, comp);
    else if (dims == 3)
      img = read_dim<3>(path, comp);
    else
      throw IoError(path, "only 2D and 3D images are supported, got " + std::to_string(dims) + "D");
    img.file_dtype = comp_name(comp);
    img.meta["format"] = io->GetNameOfClass();
    return img;
  } catch (const itk::ExceptionObject& e) {
    throw IoError(path, std::string("ITK: ") + e.GetDescription());
  }
}

void write_itk(const Image& image, const std::string& path) {
  const auto lower = to_lower(path);
  const bool single_file = ends_with(lower, ".mha") || ends_with(lower, ".nrrd");
  fs::path target = path;
  if (single_file) {
    std::random_device rd;
    target = fs::path(path).parent_path() /
             (".tmp" + std::to_string(rd()) + "." + fs::path(path).filename().string());
  }
  std::error_code ec;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  try {
    const int d = image.spatial_dims();
    if (d == 2)
      write_dim<2>(image, path, target.string());
    else if (d == 3)
      write_dim<3>(image, path, target.string());
    else
      throw IoError(path, "only 2D and 3D images can be written");
  } catch (const itk::ExceptionObject& e) {
    fs::remove(target, ec);
    throw IoError(path, std::string("ITK: ") + e.GetDescription());
  }
  if (single_file) {
    fs::rename(target, path, ec);
    if (ec) throw IoError(path, "rename failed: " + ec.message());
  }
}

// ---------------------------------------------------------------- DICOM series

}  // namespace barton::io::internal

namespace barton::io {

std::vector<DicomSeries> list_dicom_series(const std::string& folder) {
  using namespace internal;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw IoError(folder, "not a folder");
  // Every file is walked (bounds-checked) before GDCM sees it: GDCM aborts the process on a
  // truncated file. Files that are not DICOM, or hold no image, are not part of a series.
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (entry.is_regular_file(ec)) files.push_back(entry.path().string());
  }
  if (ec) throw IoError(folder, "cannot list the folder: " + ec.message());
  std::sort(files.begin(), files.end());
  std::map<std::string, DicomSeries> by_uid;
  for (const auto& f : files) {
    const auto info = walk_dicom_file(f);
    if (!info.is_dicom || !info.has_pixel_data || info.series_uid.empty()) continue;
    auto& s = by_uid[info.series_uid];
    if (s.files.empty()) {
      s.uid = info.series_uid;
      s.description = info.description;
      s.modality = info.modality;
    }
    s.files.push_back(f);
  }
  std::vector<DicomSeries> out;
  for (auto& [uid, s] : by_uid) out.push_back(std::move(s));
  std::stable_sort(out.begin(), out.end(), [](const DicomSeries& a, const DicomSeries& b) {
    return a.files.size() > b.files.size();
  });
  return out;
}

}  // namespace barton::io

namespace barton::io::internal {

namespace {

/// One DICOM slice's file and position.
struct DicomSlice {
  std::string file;
  std::array<double, 3> ipp{};
  std::array<double, 6> iop{};
  double pos = 0;
};

/// A series' slices (unsorted) and in-plane geometry, from the file headers.
struct DicomSeriesHeaders {
  std::vector<DicomSlice> slices;
  std::array<double, 2> pixel_spacing{1, 1};
};

const DicomSeries& choose_series(const std::vector<DicomSeries>& all,
                                 const std::string& folder,
                                 const ReadOptions& options) {
  if (all.empty()) throw IoError(folder, "no DICOM series found in this folder");
  if (options.series_uid.empty()) return all.front();
  std::vector<std::string> uids;
  for (const auto& s : all) {
    if (s.uid == options.series_uid) return s;
    uids.push_back(s.uid);
  }
  throw IoError(
      folder, "no series with UID '" + options.series_uid + "' (found: " + join(uids, ", ") + ")");
}

DicomSeriesHeaders read_slice_headers(const DicomSeries* chosen, const std::string& folder) {
  DicomSeriesHeaders h;
  auto& slices = h.slices;
  auto& pixel_spacing = h.pixel_spacing;
  std::array<std::size_t, 2> rows_cols{0, 0};
  try {
    for (const auto& f : chosen->files) {
      auto io = itk::GDCMImageIO::New();
      io->SetFileName(f);
      io->ReadImageInformation();
      const auto& dict = io->GetMetaDataDictionary();
      DicomSlice s;
      s.file = f;
      const auto ipp = split(meta_string(dict, "0020|0032"), '\\');
      const auto iop = split(meta_string(dict, "0020|0037"), '\\');
      if (ipp.size() != 3 || iop.size() != 6) {
        throw IoError(f, "missing Image Position/Orientation (Patient); cannot build a 3D volume");
      }
      for (int i = 0; i < 3; ++i) s.ipp[i] = std::stod(ipp[i]);
      for (int i = 0; i < 6; ++i) s.iop[i] = std::stod(iop[i]);
      const auto ps = split(meta_string(dict, "0028|0030"), '\\');
      if (ps.size() == 2) pixel_spacing = {std::stod(ps[0]), std::stod(ps[1])};
      const std::array<std::size_t, 2> rc{io->GetDimensions(1), io->GetDimensions(0)};
      if (rows_cols[0] == 0) rows_cols = rc;
      if (rc != rows_cols) {
        throw IoError(folder,
                      fmt::format("inconsistent series {}: slice {} is {}x{}, others {}x{}",
                                  chosen->uid, f, rc[0], rc[1], rows_cols[0], rows_cols[1]));
      }
      slices.push_back(s);
    }
  } catch (const itk::ExceptionObject& e) {
    throw IoError(folder, std::string("reading DICOM headers: ") + e.GetDescription());
  } catch (const std::invalid_argument&) {
    throw IoError(folder, "malformed Image Position/Orientation values in series " + chosen->uid);
  }
  return h;
}

/// The slice geometry along the normal: checks one orientation, distinct and evenly spaced
/// positions and no in-plane shift; sorts the slices along the normal.
struct SliceStack {
  std::array<double, 3> row, col, normal;
  double dz = 1.0;
};

SliceStack stack_slices(std::vector<DicomSlice>& slices,
                        const DicomSeries* chosen,
                        const std::string& folder) {
  // Orientation must agree across slices.
  const auto& iop0 = slices.front().iop;
  for (const auto& s : slices) {
    for (int i = 0; i < 6; ++i) {
      if (std::abs(s.iop[i] - iop0[i]) > 1e-4) {
        throw IoError(
            folder,
            fmt::format("inconsistent orientation in series {}: {} has ImageOrientationPatient "
                        "[{}] but {} has [{}]",
                        chosen->uid, slices.front().file, fmt::join(iop0, ", "), s.file,
                        fmt::join(s.iop, ", ")));
      }
    }
  }
  const std::array<double, 3> row{iop0[0], iop0[1], iop0[2]}, col{iop0[3], iop0[4], iop0[5]};
  const std::array<double, 3> normal{row[1] * col[2] - row[2] * col[1],
                                     row[2] * col[0] - row[0] * col[2],
                                     row[0] * col[1] - row[1] * col[0]};
  for (auto& s : slices) s.pos = s.ipp[0] * normal[0] + s.ipp[1] * normal[1] + s.ipp[2] * normal[2];
  std::sort(slices.begin(), slices.end(),
            [](const DicomSlice& a, const DicomSlice& b) { return a.pos < b.pos; });
  double dz = 1.0;
  if (slices.size() > 1) {
    dz = (slices.back().pos - slices.front().pos) / static_cast<double>(slices.size() - 1);
    for (std::size_t i = 1; i < slices.size(); ++i) {
      const double gap = slices[i].pos - slices[i - 1].pos;
      if (gap < 1e-6) {
        throw IoError(
            folder, fmt::format("series {}: slices {} and {} share position {:.4f} mm", chosen->uid,
                                slices[i - 1].file, slices[i].file, slices[i].pos));
      }
      if (std::abs(gap - dz) > std::max(1e-3, 0.01 * dz)) {
        throw IoError(
            folder,
            fmt::format("inconsistent slice spacing in series {}: {:.4f} mm between {} and {}, "
                        "{:.4f} mm on average (missing slices?)",
                        chosen->uid, gap, slices[i - 1].file, slices[i].file, dz));
      }
      // In-plane position must move along the normal only.
      for (int k = 0; k < 3; ++k) {
        const double expect = slices[0].ipp[k] + normal[k] * (slices[i].pos - slices[0].pos);
        if (std::abs(slices[i].ipp[k] - expect) > std::max(1e-3, 0.01 * dz)) {
          throw IoError(folder, "series " + chosen->uid + ": slice " + slices[i].file +
                                    " is shifted in-plane (gantry tilt is not supported)");
        }
      }
    }
  }
  return SliceStack{row, col, normal, dz};
}

/// The voxels of the sorted slices as [1, I, J, K]; GDCM applies each slice's
/// RescaleSlope/Intercept.
void read_series_voxels(const std::vector<DicomSlice>& slices,
                        const std::string& folder,
                        Image& img) {
  std::vector<std::string> files;
  for (const auto& s : slices) files.push_back(s.file);
  try {
    auto gdcm_io = itk::GDCMImageIO::New();
    gdcm_io->SetFileName(files.front());
    gdcm_io->ReadImageInformation();
    const auto comp = gdcm_io->GetInternalComponentType();
    using Reader = itk::ImageSeriesReader<itk::Image<float, 3>>;
    auto reader = Reader::New();
    reader->SetImageIO(itk::GDCMImageIO::New());
    reader->SetFileNames(files);
    reader->Update();
    auto* out = reader->GetOutput();
    const auto size = out->GetLargestPossibleRegion().GetSize();
    at::Tensor t = at::empty({static_cast<int64_t>(size[2]), static_cast<int64_t>(size[1]),
                              static_cast<int64_t>(size[0])},
                             at::kFloat);
    std::memcpy(t.data_ptr(), out->GetBufferPointer(),
                static_cast<std::size_t>(t.numel()) * sizeof(float));
    t = t.permute({2, 1, 0}).unsqueeze(0).contiguous();
    // Integral results (e.g. CT in HU) stay integral, as most readers return them.
    const bool integral = at::equal(t, t.round());
    const auto mx = t.abs().max().item<double>();
    (void)comp;
    if (integral && mx < 32768) {
      img.data = t.to(at::kShort);
      img.file_dtype = "int16";
    } else if (integral && mx < 2147483648.0) {
      img.data = t.to(at::kInt);
      img.file_dtype = "int32";
    } else {
      img.data = t;
      img.file_dtype = "float32";
    }
  } catch (const itk::ExceptionObject& e) {
    throw IoError(folder, std::string("reading DICOM pixels: ") + e.GetDescription());
  }
}

}  // namespace

Image read_dicom_series(const std::string& folder, const ReadOptions& options) {
  const auto all = list_dicom_series(folder);
  const DicomSeries* chosen = &choose_series(all, folder, options);
  internal::check_gdcm_decodes(chosen->files);
  auto headers = read_slice_headers(chosen, folder);
  auto& slices = headers.slices;
  const auto& pixel_spacing = headers.pixel_spacing;
  const auto [row, col, normal, dz] = stack_slices(slices, chosen, folder);
  Image img;
  read_series_voxels(slices, folder, img);
  // Affine (LPS): columns = row cosine * column spacing, column cosine * row spacing, normal * dz.
  Affine lps = identity_affine();
  for (int r = 0; r < 3; ++r) {
    lps[r * 4 + 0] = row[r] * pixel_spacing[1];
    lps[r * 4 + 1] = col[r] * pixel_spacing[0];
    lps[r * 4 + 2] = normal[r] * dz;
    lps[r * 4 + 3] = slices.front().ipp[r];
  }
  img.affine = flip_xy(lps);
  img.source = folder;
  img.meta["format"] = "DICOM";
  img.meta["series_uid"] = chosen->uid;
  img.meta["modality"] = chosen->modality;
  img.meta["series_description"] = chosen->description;
  img.meta["slices"] = std::to_string(slices.size());
  return img;
}

}  // namespace barton::io::internal
