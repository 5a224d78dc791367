#include "store/service_url.h"

#include <charconv>

#include "core/text.h"

namespace llmd::store {
namespace {

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    unsigned int v = 0;
    if (i + 2 >= s.size() || std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr != s.data() + i + 3) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

std::unexpected<Error> bad(const std::string& what) { return fail(ErrorCode::kInvalidArgument, what, "bad_config"); }

}  // namespace

Result<ServiceUrl> parse_service_url(std::string_view url, std::string_view scheme) {
  const std::string prefix = std::string(scheme) + "://";
  if (!url.starts_with(prefix)) return bad("not a " + prefix + " URL");
  std::string_view rest = url.substr(prefix.size());
  ServiceUrl out;
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest, path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    auto password = percent_decode(colon == std::string_view::npos ? "" : userinfo.substr(colon + 1));
    if (!user || !password) return bad("bad percent-encoding in the user or password");
    out.has_userinfo = true;
    out.has_password = colon != std::string_view::npos;
    out.user = std::move(*user);
    out.password = std::move(*password);
  }
  if (auto colon = authority.rfind(':');
      colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    auto port = text::parse_int(authority.substr(colon + 1));
    if (!port || *port < 1 || *port > 65535) return bad("bad port");
    out.port = static_cast<int>(*port);
    authority = authority.substr(0, colon);
  }
  out.host = std::string(authority);
  auto decoded_path = percent_decode(path);
  if (!decoded_path) return bad("bad percent-encoding in the path");
  out.path = std::move(*decoded_path);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!value) return bad("bad percent-encoding in a parameter");
    out.params.emplace_back(std::string(pair.substr(0, eq)), std::move(*value));
  }
  return out;
}

}  // namespace llmd::store
