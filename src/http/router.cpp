#include "http/router.h"

#include <algorithm>

namespace llmd::http {
namespace {

std::vector<std::string_view> path_parts(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i >= path.size()) break;
    const auto end = path.find('/', i);
    parts.push_back(path.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i));
    if (end == std::string_view::npos) break;
    i = end;
  }
  return parts;
}

}  // namespace

void Router::add(std::string method, std::string pattern, Handler handler) {
  Route route{std::move(method), std::move(pattern), {}, std::move(handler)};
  for (auto part : path_parts(route.pattern)) {
    Segment seg;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      seg.is_param = true;
      seg.text = std::string(part.substr(1, part.size() - 2));
      if (seg.text.ends_with("...")) {
        seg.is_rest = true;
        seg.text.resize(seg.text.size() - 3);
      }
    } else {
      seg.text = std::string(part);
    }
    route.segments.push_back(std::move(seg));
  }
  std::erase_if(routes_, [&](const Route& r) { return r.method == route.method && r.pattern == route.pattern; });
  routes_.push_back(std::move(route));
}

bool Router::match_segments(const Route& r, const std::vector<std::string_view>& parts,
                            std::map<std::string, std::string>& params) {
  params.clear();
  std::size_t i = 0;
  for (; i < r.segments.size(); ++i) {
    const Segment& seg = r.segments[i];
    if (seg.is_rest) {
      if (i >= parts.size()) return false;
      std::string rest;
      for (std::size_t k = i; k < parts.size(); ++k) {
        if (!rest.empty()) rest += '/';
        rest += parts[k];
      }
      params[seg.text] = std::move(rest);
      return true;
    }
    if (i >= parts.size()) return false;
    if (seg.is_param) {
      params[seg.text] = std::string(parts[i]);
    } else if (seg.text != parts[i]) {
      return false;
    }
  }
  return i == parts.size();
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  const auto parts = path_parts(path);
  RouteMatch result;
  std::map<std::string, std::string> params;
  // Literal segments win over parameters: prefer the route with the most
  // literal matches among those that fit, so `/models/list` beats `/models/{name}`.
  int best_score = -1;
  for (const auto& r : routes_) {
    if (!match_segments(r, parts, params)) continue;
    const bool method_ok = r.method == method || (method == "HEAD" && r.method == "GET");
    if (!method_ok) {
      if (std::ranges::find(result.allowed, r.method) == result.allowed.end()) result.allowed.push_back(r.method);
      continue;
    }
    const int score = static_cast<int>(std::ranges::count_if(r.segments, [](const Segment& s) { return !s.is_param; }));
    if (score > best_score) {
      best_score = score;
      result.kind = RouteMatch::Kind::kFound;
      result.handler = &r.handler;
      result.pattern = r.pattern;
      result.params = params;
    }
  }
  if (result.kind == RouteMatch::Kind::kFound) return result;
  if (!result.allowed.empty()) {
    if (std::ranges::find(result.allowed, "GET") != result.allowed.end()) result.allowed.push_back("HEAD");
    std::ranges::sort(result.allowed);
    result.kind = RouteMatch::Kind::kMethodNotAllowed;
  } else if (fallback_) {
    result.kind = RouteMatch::Kind::kFound;
    result.handler = &fallback_;
    result.pattern = fallback_pattern_;
  }
  return result;
}

}  // namespace llmd::http
