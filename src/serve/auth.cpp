#include "serve/auth.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/strings.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

namespace barton::serve {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kHashBytes = 32;
constexpr int kSaltBytes = 16;
constexpr int kMaxFailures = 5;
constexpr int kFailureWindowS = 60;

std::string base64(const unsigned char* data, int n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, n);
  out.resize(static_cast<std::size_t>(len));
  return out;
}

/// Decodes standard base64; nullopt when malformed.
std::optional<std::string> unbase64(const std::string& s) {
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  std::string out(s.size() / 4 * 3, '\0');
  const int len =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (len < 0) return std::nullopt;
  std::size_t pad = 0;
  if (s.back() == '=') ++pad;
  if (s.size() > 1 && s[s.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(len) - pad);
  return out;
}

std::string random_bytes(int n) {
  std::string out(static_cast<std::size_t>(n), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), n) != 1)
    throw Error("the system random generator failed (OpenSSL RAND_bytes)");
  return out;
}

std::string pbkdf2(const std::string& password, const std::string& salt, int iterations) {
  std::string out(kHashBytes, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(), kHashBytes,
                        reinterpret_cast<unsigned char*>(out.data())) != 1)
    throw Error("PBKDF2 failed (OpenSSL)");
  return out;
}

struct Parsed {
  int iterations;
  std::string salt, hash;
};

std::optional<Parsed> parse_hash(const std::string& encoded) {
  const auto f = split(encoded, '$');
  if (f.size() != 4 || f[0] != "pbkdf2_sha256") return std::nullopt;
  Parsed p{};
  try {
    std::size_t used = 0;
    p.iterations = std::stoi(f[1], &used);
    if (used != f[1].size() || p.iterations < 1000 || p.iterations > 100000000) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  auto salt = unbase64(f[2]);
  auto hash = unbase64(f[3]);
  if (!salt || !hash || salt->size() < 8 || hash->size() != kHashBytes) return std::nullopt;
  p.salt = std::move(*salt);
  p.hash = std::move(*hash);
  return p;
}

json user_json(const AuthUser& u) {
  json roles = json::array();
  for (Role r : u.roles) roles.push_back(role_name(r));
  return {{"username", u.username}, {"password", u.password}, {"roles", roles}};
}

}  // namespace

std::optional<Role> parse_role(const std::string& name) {
  std::string n = to_lower(name);
  if (starts_with(n, "monailabel-")) n = n.substr(11);
  if (n == "user") return Role::kUser;
  if (n == "annotator") return Role::kAnnotator;
  if (n == "reviewer") return Role::kReviewer;
  if (n == "admin") return Role::kAdmin;
  return std::nullopt;
}

const char* role_name(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kReviewer:
      return "reviewer";
    case Role::kAnnotator:
      return "annotator";
    case Role::kUser:
      break;
  }
  return "user";
}

std::string hash_password(const std::string& password, int iterations) {
  if (iterations < 1000) throw Error("PBKDF2 iterations must be at least 1000");
  const auto salt = random_bytes(kSaltBytes);
  const auto hash = pbkdf2(password, salt, iterations);
  return fmt::format("pbkdf2_sha256${}${}${}", iterations,
                     base64(reinterpret_cast<const unsigned char*>(salt.data()), kSaltBytes),
                     base64(reinterpret_cast<const unsigned char*>(hash.data()), kHashBytes));
}

bool verify_password(const std::string& password, const std::string& encoded) {
  const auto p = parse_hash(encoded);
  if (!p) return false;
  const auto hash = pbkdf2(password, p->salt, p->iterations);
  return CRYPTO_memcmp(hash.data(), p->hash.data(), kHashBytes) == 0;
}

Role AuthUser::highest() const {
  Role best = Role::kUser;
  for (Role r : roles) best = std::max(best, r);
  return best;
}

std::vector<AuthUser> read_users(const std::string& path) {
  json doc = json::parse(read_file(path), nullptr, false);
  if (doc.is_discarded()) throw ConfigError(path, "", "not valid JSON");
  if (!doc.is_object() || !doc.contains("users") || !doc["users"].is_array())
    throw ConfigError(path, "/users", "expected an array of users");
  std::vector<AuthUser> out;
  for (std::size_t i = 0; i < doc["users"].size(); ++i) {
    const auto& u = doc["users"][i];
    const auto at = fmt::format("/users/{}", i);
    if (!u.is_object()) throw ConfigError(path, at, "expected an object");
    AuthUser user;
    if (!u.contains("username") || !u["username"].is_string() ||
        u["username"].get<std::string>().empty())
      throw ConfigError(path, at + "/username", "expected a non-empty string");
    user.username = u["username"];
    if (!u.contains("password") || !u["password"].is_string() ||
        !parse_hash(u["password"].get<std::string>()))
      throw ConfigError(path, at + "/password",
                        "expected a salted hash \"pbkdf2_sha256$<iterations>$<salt>$<hash>\" "
                        "(write one with `barton serve-user`); plain passwords are refused");
    user.password = u["password"];
    if (!u.contains("roles") || !u["roles"].is_array() || u["roles"].empty())
      throw ConfigError(path, at + "/roles",
                        "expected a non-empty array of roles (user, annotator, reviewer, admin)");
    for (std::size_t r = 0; r < u["roles"].size(); ++r) {
      const auto& name = u["roles"][r];
      const auto role = name.is_string() ? parse_role(name.get<std::string>()) : std::nullopt;
      if (!role)
        throw ConfigError(path, fmt::format("{}/roles/{}", at, r),
                          "unknown role (user, annotator, reviewer, admin)");
      user.roles.push_back(*role);
    }
    for (const auto& other : out)
      if (other.username == user.username)
        throw ConfigError(path, at + "/username", "user '" + user.username + "' appears twice");
    out.push_back(std::move(user));
  }
  return out;
}

void write_user(const std::string& path, const AuthUser& user) {
  std::vector<AuthUser> users;
  if (fs::exists(path)) users = read_users(path);
  bool replaced = false;
  for (auto& u : users)
    if (u.username == user.username) {
      u = user;
      replaced = true;
    }
  if (!replaced) users.push_back(user);
  json arr = json::array();
  for (const auto& u : users) arr.push_back(user_json(u));
  const mode_t old = ::umask(077);  // the temp file is created 0600 and renamed
  try {
    write_file_atomic(path, json{{"users", arr}}.dump(2) + "\n");
  } catch (...) {
    ::umask(old);
    throw;
  }
  ::umask(old);
  ::chmod(path.c_str(), 0600);
}

Authenticator::Authenticator(const std::string& users_file, int token_expiry_s)
    : users_(read_users(users_file)), token_expiry_s_(token_expiry_s) {
  if (users_.empty()) throw ConfigError(users_file, "/users", "no users: nobody could log in");
  // Unknown user names cost as much as known ones: verify against a hash of the same strength.
  const auto p = parse_hash(users_.front().password);
  dummy_hash_ = hash_password(random_bytes(12), p ? p->iterations : 600000);
}

Authenticator::LoginResult Authenticator::login(const std::string& username,
                                                const std::string& password,
                                                Token* token) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& f = failures_[username];
    if (now - f.since > std::chrono::seconds(kFailureWindowS)) f = Failures{0, now};
    if (f.count >= kMaxFailures) return LoginResult::kLocked;
  }
  const AuthUser* user = nullptr;
  for (const auto& u : users_)
    if (u.username == username) user = &u;
  const bool ok = verify_password(password, user ? user->password : dummy_hash_) && user;
  std::lock_guard<std::mutex> lock(mu_);
  if (!ok) {
    auto& f = failures_[username];
    if (f.count == 0) f.since = now;
    ++f.count;
    if (failures_.size() > 10000) failures_.clear();  // bounded under a flood of names
    return LoginResult::kWrong;
  }
  failures_.erase(username);
  const auto raw = random_bytes(32);
  token->access_token = base64(reinterpret_cast<const unsigned char*>(raw.data()), 32);
  for (auto& c : token->access_token) {  // URL- and header-safe
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!token->access_token.empty() && token->access_token.back() == '=')
    token->access_token.pop_back();
  token->token_type = "bearer";
  token->expires_in = token_expiry_s_;
  for (auto it = tokens_.begin(); it != tokens_.end();)
    it = it->second.expires < now ? tokens_.erase(it) : std::next(it);
  tokens_[token->access_token] = Issued{Identity{user->username, user->highest()},
                                        now + std::chrono::seconds(token_expiry_s_)};
  return LoginResult::kOk;
}

namespace {
std::string bearer_token(const std::string& authorization) {
  const auto t = trim(authorization);
  const auto space = t.find(' ');
  if (space == std::string::npos || to_lower(t.substr(0, space)) != "bearer") return "";
  return trim(t.substr(space + 1));
}
}  // namespace

std::optional<Identity> Authenticator::check(const std::string& authorization) const {
  const auto token = bearer_token(authorization);
  if (token.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  if (it->second.expires < std::chrono::steady_clock::now()) {
    tokens_.erase(it);
    return std::nullopt;
  }
  return it->second.who;
}

bool Authenticator::revoke(const std::string& authorization) {
  const auto token = bearer_token(authorization);
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_.erase(token) > 0;
}

}  // namespace barton::serve
