// Issue 13 items 11/12/20: CIDR networks, the trusted-proxy rule for
// X-Forwarded-For and the allow-list.
#include <gtest/gtest.h>

#include "http/client_address.h"

namespace llmd::http {
namespace {

IpAddress ip(const char* s) { return *parse_ip(s); }

NetworkList nets(std::vector<std::string> cidrs) { return *NetworkList::parse(cidrs); }

TEST(Network, ContainsByPrefixForIpv4AndIpv6) {
  const auto lan = *Network::parse("192.168.0.0/16");
  EXPECT_TRUE(lan.contains(ip("192.168.3.4")));
  EXPECT_FALSE(lan.contains(ip("192.169.0.1")));
  EXPECT_FALSE(lan.contains(ip("::1")));
  const auto odd = *Network::parse("10.1.2.3/9");  // host bits ignored
  EXPECT_TRUE(odd.contains(ip("10.127.255.255")));
  EXPECT_FALSE(odd.contains(ip("10.128.0.0")));
  const auto ula = *Network::parse("fd00::/8");
  EXPECT_TRUE(ula.contains(ip("fd12:3456::1")));
  EXPECT_FALSE(ula.contains(ip("fe80::1")));
  EXPECT_TRUE(Network::parse("127.0.0.1")->contains(ip("127.0.0.1")));
  EXPECT_FALSE(Network::parse("127.0.0.1")->contains(ip("127.0.0.2")));
  EXPECT_TRUE(Network::parse("0.0.0.0/0")->contains(ip("8.8.8.8")));
  EXPECT_TRUE(Network::parse("::/0")->contains(ip("2001:db8::1")));
}

TEST(Network, Ipv4MappedAddressesCountAsIpv4) {
  boost::system::error_code ec;
  const auto mapped = boost::asio::ip::make_address("::ffff:127.0.0.1", ec);
  ASSERT_FALSE(ec);
  EXPECT_TRUE(Network::parse("127.0.0.0/8")->contains(mapped));
  EXPECT_EQ(canonical_address(mapped).to_string(), "127.0.0.1");
}

TEST(Network, JunkIsRefused) {
  for (const char* bad :
       {"", "10.0.0.0/33", "fd00::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/-1", "host.example", "10.0.0.0/8x"}) {
    EXPECT_FALSE(Network::parse(bad)) << bad;
  }
  EXPECT_FALSE(NetworkList::parse({"10.0.0.0/8", "nope"}));
}

TEST(ClientAddress, ForwardedForIgnoredFromAnUntrustedPeer) {
  const auto trusted = nets({"10.0.0.0/8"});
  EXPECT_EQ(client_address(ip("198.51.100.9"), {"203.0.113.7"}, trusted).to_string(), "198.51.100.9");
  EXPECT_EQ(client_address(ip("198.51.100.9"), {}, NetworkList()).to_string(), "198.51.100.9");
}

TEST(ClientAddress, RightMostUntrustedHopIsTheClient) {
  const auto trusted = nets({"10.0.0.0/8", "127.0.0.1"});
  // The client wrote "1.2.3.4" itself; the proxy appended the real peer.
  EXPECT_EQ(client_address(ip("127.0.0.1"), {"1.2.3.4, 203.0.113.7"}, trusted).to_string(), "203.0.113.7");
  // Two proxies in a row, and two header fields.
  EXPECT_EQ(client_address(ip("127.0.0.1"), {"1.2.3.4, 203.0.113.7", "10.0.0.5"}, trusted).to_string(), "203.0.113.7");
  // Only proxies: the left-most.
  EXPECT_EQ(client_address(ip("127.0.0.1"), {"10.0.0.9,10.0.0.5"}, trusted).to_string(), "10.0.0.9");
  // No header: the proxy itself.
  EXPECT_EQ(client_address(ip("127.0.0.1"), {}, trusted).to_string(), "127.0.0.1");
  // Ports and brackets as some proxies write them.
  EXPECT_EQ(client_address(ip("127.0.0.1"), {"203.0.113.7:5555"}, trusted).to_string(), "203.0.113.7");
  EXPECT_EQ(client_address(ip("127.0.0.1"), {"[2001:db8::7]:5555"}, trusted).to_string(), "2001:db8::7");
  EXPECT_EQ(client_address(ip("127.0.0.1"), {"2001:db8::7"}, trusted).to_string(), "2001:db8::7");
}

TEST(ClientAddress, JunkHopStopsAtTheLastTrustedOne) {
  const auto trusted = nets({"10.0.0.0/8", "127.0.0.1"});
  EXPECT_EQ(client_address(ip("127.0.0.1"), {"203.0.113.7, unknown, 10.0.0.5"}, trusted).to_string(), "10.0.0.5");
  EXPECT_EQ(client_address(ip("127.0.0.1"), {"not-an-ip"}, trusted).to_string(), "127.0.0.1");
}

}  // namespace
}  // namespace llmd::http
