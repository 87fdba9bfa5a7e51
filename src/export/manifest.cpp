#include "export/manifest.h"

#include <algorithm>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include <openssl/evp.h>

namespace barton::exporter {

namespace fs = std::filesystem;

std::string sha256_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(path.string(), "cannot be opened for hashing");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (f.gcount() > 0)
      EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(f.gcount()));
  }
  if (f.bad()) throw IoError(path.string(), "read error while hashing");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

namespace {

std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const auto rel = fs::relative(e.path(), dir).generic_string();
    if (rel != kManifestName) out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

void write_manifest(const fs::path& dir, nlohmann::ordered_json meta) {
  auto files = nlohmann::ordered_json::array();
  for (const auto& rel : files_under(dir)) {
    files.push_back(
        {{"path", rel}, {"bytes", fs::file_size(dir / rel)}, {"sha256", sha256_file(dir / rel)}});
  }
  meta["files"] = files;
  write_file_atomic(dir / kManifestName, meta.dump(2) + "\n");
}

VerifyReport verify(const fs::path& dir) {
  const auto path = dir / kManifestName;
  if (!fs::exists(path))
    throw IoError(path.string(), "no manifest: this folder was not written by barton export");
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path.string(), std::string("is not valid JSON: ") + e.what());
  }
  if (!m.contains("files") || !m["files"].is_array())
    throw IoError(path.string(), "has no \"files\" list");
  VerifyReport r;
  std::vector<std::string> listed;
  for (const auto& f : m["files"]) {
    const auto rel = f.at("path").get<std::string>();
    listed.push_back(rel);
    const auto p = dir / rel;
    if (!fs::exists(p))
      r.missing.push_back(rel);
    else if (fs::file_size(p) != f.at("bytes").get<uint64_t>() ||
             sha256_file(p) != f.at("sha256").get<std::string>())
      r.modified.push_back(rel);
    else
      r.ok.push_back(rel);
  }
  for (const auto& rel : files_under(dir)) {
    if (std::find(listed.begin(), listed.end(), rel) == listed.end()) r.unlisted.push_back(rel);
  }
  return r;
}

}  // namespace barton::exporter
