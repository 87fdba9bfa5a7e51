#pragma once
/// `barton serve --auth users.json`: users with salted password hashes and roles, MONAI Label's
/// token endpoint (`POST /auth/token`) and bearer tokens (docs/serve.md, "Authentication").
///
/// users.json:
///   {"users": [{"username": "ana", "password": "pbkdf2_sha256$<iterations>$<salt>$<hash>",
///               "roles": ["annotator"]}]}
/// salt and hash are base64; `barton serve-user` writes entries. Roles, from least to most:
/// user (read, infer, sessions, active learning), annotator and reviewer (+ save labels and
/// images), admin (+ train and model administration). MONAI Label's "monailabel-<role>" names
/// are accepted too.

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace barton::serve {

enum class Role { kUser = 0, kAnnotator = 1, kReviewer = 2, kAdmin = 3 };

/// The role named `name` ("admin", "monailabel-admin", ...); nullopt when unknown.
std::optional<Role> parse_role(const std::string& name);
const char* role_name(Role role);

/// "pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>" of `password` with a fresh 16-byte salt.
std::string hash_password(const std::string& password, int iterations = 600000);
/// True when `password` matches `encoded` (constant-time comparison). False for a malformed
/// encoding.
bool verify_password(const std::string& password, const std::string& encoded);

struct AuthUser {
  std::string username;
  std::string password;  ///< The encoded hash.
  std::vector<Role> roles;
  Role highest() const;
};

/// Reads users.json; throws ConfigError naming the file and JSON path of a bad entry.
std::vector<AuthUser> read_users(const std::string& path);
/// Adds or replaces `user` in the users file at `path` (created when missing), written
/// atomically with mode 0600. Throws IoError / ConfigError.
void write_user(const std::string& path, const AuthUser& user);

/// Who a valid token belongs to.
struct Identity {
  std::string username;
  Role role = Role::kUser;
};

/// Thread-safety: all members may be called from any thread.
class Authenticator {
 public:
  /// Reads the users file; throws ConfigError. `token_expiry_s`: how long a token stays valid.
  Authenticator(const std::string& users_file, int token_expiry_s);

  struct Token {
    std::string access_token;
    std::string token_type = "bearer";
    int expires_in = 0;
  };
  enum class LoginResult { kOk, kWrong, kLocked };
  /// Checks the password (the same work is done for unknown users, so timing tells nothing) and
  /// issues a token. After 5 failures for one user name within 60 s, further tries answer
  /// kLocked until the minute has passed.
  LoginResult login(const std::string& username, const std::string& password, Token* token);
  /// The identity of an `Authorization` header value ("Bearer <token>", any case), or nullopt.
  std::optional<Identity> check(const std::string& authorization) const;
  /// Forgets a token (logout); false when unknown.
  bool revoke(const std::string& authorization);
  std::size_t users() const { return users_.size(); }

 private:
  struct Issued {
    Identity who;
    std::chrono::steady_clock::time_point expires;
  };
  struct Failures {
    int count = 0;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<AuthUser> users_;
  int token_expiry_s_;
  std::string dummy_hash_;  ///< Verified against for unknown users.
  mutable std::mutex mu_;
  mutable std::map<std::string, Issued> tokens_;  ///< Expired ones removed on lookup.
  std::map<std::string, Failures> failures_;
};

}  // namespace barton::serve
