// Who a request really comes from: IP networks (CIDR), the trusted-proxy
// rule for X-Forwarded-For, and the allow-list check. Used by the server
// before any request reaches the application, so Request::remote_ip is the
// real client address for every consumer (logs, rate limits, throttles).
//
//   auto trusted = NetworkList::parse({"10.0.0.0/8", "::1"}).value();
//   auto client = client_address(peer, {"203.0.113.7, 10.0.0.2"}, trusted);  // 203.0.113.7
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "core/error.h"

namespace llmd::http {

using IpAddress = boost::asio::ip::address;

// An IPv4-mapped IPv6 address ("::ffff:10.1.2.3", what a dual-stack socket
// reports for IPv4 peers) as the IPv4 address; any other address unchanged.
IpAddress canonical_address(const IpAddress& a);

// Parses an IPv4 or IPv6 address, canonical (see above); nullopt if junk.
std::optional<IpAddress> parse_ip(std::string_view text);

// One IPv4 or IPv6 network: "192.168.0.0/16", "fd00::/8", or a bare address
// (a /32 or /128). Bits beyond the prefix are ignored ("10.1.2.3/8" is
// 10.0.0.0/8). An IPv4 network contains IPv4-mapped IPv6 addresses too.
class Network {
 public:
  // Errors: kInvalidArgument naming the text.
  static Result<Network> parse(std::string_view cidr);
  bool contains(const IpAddress& a) const;

 private:
  bool v6_ = false;
  std::array<std::uint8_t, 16> bytes_{};
  int prefix_ = 0;
};

// A set of networks; empty contains nothing.
class NetworkList {
 public:
  // Errors: kInvalidArgument for the first entry that does not parse.
  static Result<NetworkList> parse(const std::vector<std::string>& cidrs);
  bool contains(const IpAddress& a) const;
  bool empty() const { return networks_.empty(); }

 private:
  std::vector<Network> networks_;
};

// The real client of a request that reached us from `peer`. When `peer` is
// not in `trusted_proxies`, it is the client and X-Forwarded-For is ignored
// (anyone can send one). Otherwise the X-Forwarded-For lists (every such
// header, in order) are read from the right: each trusted proxy there is
// skipped, and the first address that is not one is the client — entries
// left of it were written by the client itself and prove nothing. When every
// entry is a trusted proxy, the left-most is the client; an entry that is not
// an IP address stops the walk at the last trusted hop.
IpAddress client_address(const IpAddress& peer, const std::vector<std::string_view>& forwarded_for,
                         const NetworkList& trusted_proxies);

}  // namespace llmd::http
