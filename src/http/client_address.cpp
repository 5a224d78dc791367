#include "http/client_address.h"

#include "core/text.h"

namespace llmd::http {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits the comma-separated X-Forwarded-For lists into one address text
// per hop, left to right.
std::vector<std::string_view> hops(const std::vector<std::string_view>& lists) {
  std::vector<std::string_view> out;
  for (std::string_view list : lists) {
    while (true) {
      const auto comma = list.find(',');
      out.push_back(trim(list.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return out;
}

// A hop as proxies write it: a bare address, "[v6]" or "[v6]:port" or
// "v4:port" (some proxies add the port).
std::optional<IpAddress> parse_hop(std::string_view hop) {
  if (hop.starts_with('[')) {
    const auto end = hop.find(']');
    if (end == std::string_view::npos) return std::nullopt;
    return parse_ip(hop.substr(1, end - 1));
  }
  if (auto ip = parse_ip(hop)) return ip;
  const auto colon = hop.find(':');
  if (colon != std::string_view::npos && hop.find(':', colon + 1) == std::string_view::npos) {
    return parse_ip(hop.substr(0, colon));  // "v4:port"
  }
  return std::nullopt;
}

}  // namespace

IpAddress canonical_address(const IpAddress& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

std::optional<IpAddress> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return canonical_address(a);
}

Result<Network> Network::parse(std::string_view cidr) {
  const std::string_view text = trim(cidr);
  const auto slash = text.find('/');
  const auto ip = parse_ip(text.substr(0, slash));
  auto bad = [&] {
    return fail(ErrorCode::kInvalidArgument,
                "not an IP network (CIDR such as 10.0.0.0/8 or fd00::/8): \"" + std::string(cidr) + "\"");
  };
  if (!ip) return bad();
  Network n;
  n.v6_ = ip->is_v6();
  if (n.v6_) {
    n.bytes_ = ip->to_v6().to_bytes();
  } else {
    const auto b = ip->to_v4().to_bytes();
    std::copy(b.begin(), b.end(), n.bytes_.begin());
  }
  const int max_prefix = n.v6_ ? 128 : 32;
  n.prefix_ = max_prefix;
  if (slash != std::string_view::npos) {
    const auto p = text::parse_int(text.substr(slash + 1));
    if (!p || *p < 0 || *p > max_prefix) return bad();
    n.prefix_ = static_cast<int>(*p);
  }
  return n;
}

bool Network::contains(const IpAddress& address) const {
  const IpAddress a = canonical_address(address);
  if (a.is_v6() != v6_) return false;
  std::array<std::uint8_t, 16> b{};
  if (v6_) {
    b = a.to_v6().to_bytes();
  } else {
    const auto v4 = a.to_v4().to_bytes();
    std::copy(v4.begin(), v4.end(), b.begin());
  }
  int bits = prefix_;
  for (std::size_t i = 0; bits > 0; ++i, bits -= 8) {
    const std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
    if ((b[i] & mask) != (bytes_[i] & mask)) return false;
  }
  return true;
}

Result<NetworkList> NetworkList::parse(const std::vector<std::string>& cidrs) {
  NetworkList list;
  for (const auto& c : cidrs) {
    auto n = Network::parse(c);
    if (!n) return std::unexpected(n.error());
    list.networks_.push_back(*n);
  }
  return list;
}

bool NetworkList::contains(const IpAddress& a) const {
  for (const auto& n : networks_) {
    if (n.contains(a)) return true;
  }
  return false;
}

IpAddress client_address(const IpAddress& peer, const std::vector<std::string_view>& forwarded_for,
                         const NetworkList& trusted_proxies) {
  IpAddress client = canonical_address(peer);
  if (forwarded_for.empty() || !trusted_proxies.contains(client)) return client;
  const auto list = hops(forwarded_for);
  for (auto it = list.rbegin(); it != list.rend(); ++it) {
    const auto hop = parse_hop(*it);
    if (!hop) break;  // junk: the client is the last hop we could trust
    client = *hop;
    if (!trusted_proxies.contains(client)) break;
  }
  return client;
}

}  // namespace llmd::http
