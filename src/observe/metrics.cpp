#include "observe/metrics.h"

#include <charconv>
#include <cmath>

namespace llmd::observe {
namespace {

std::string format_number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip
  return ec == std::errc{} ? std::string(buf, end) : std::string("NaN");
}

std::string label_block(const std::vector<std::string>& names, const LabelValues& values,
                        const std::string& extra_name = {}, const std::string& extra_value = {}) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra_name + "=\"" + extra_value + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

template <typename T>
void render_header(std::string& out, const Family<T>& f, const char* type) {
  out += "# HELP " + f.name() + " " + f.help() + "\n";
  out += "# TYPE " + f.name() + " " + type + "\n";
}

}  // namespace

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::vector<double> default_latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double v) {
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::cumulative_counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

Family<Counter>& Registry::counter(const std::string& name, const std::string& help,
                                   std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  counters_.push_back(std::make_unique<Family<Counter>>(name, help, std::move(label_names),
                                                        [] { return std::make_unique<Counter>(); }));
  return *counters_.back();
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  gauges_.push_back(
      std::make_unique<Family<Gauge>>(name, help, std::move(label_names), [] { return std::make_unique<Gauge>(); }));
  return *gauges_.back();
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> label_names, std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  histograms_.push_back(std::make_unique<Family<Histogram>>(
      name, help, std::move(label_names),
      [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); }));
  return *histograms_.back();
}

void Registry::add_collector(std::function<void()> collect) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::render() const {
  std::lock_guard lock(mutex_);
  for (const auto& collect : collectors_) collect();
  std::string out;
  for (const auto& f : counters_) {
    render_header(out, *f, "counter");
    f->for_each([&](const LabelValues& lv, const Counter& c) {
      out += f->name() + label_block(f->label_names(), lv) + " " + format_number(c.value()) + "\n";
    });
  }
  for (const auto& f : gauges_) {
    render_header(out, *f, "gauge");
    f->for_each([&](const LabelValues& lv, const Gauge& g) {
      out += f->name() + label_block(f->label_names(), lv) + " " + format_number(g.value()) + "\n";
    });
  }
  for (const auto& f : histograms_) {
    render_header(out, *f, "histogram");
    f->for_each([&](const LabelValues& lv, const Histogram& h) {
      const auto counts = h.cumulative_counts();
      for (std::size_t i = 0; i < counts.size(); ++i) {
        const std::string le = i < h.bounds().size() ? format_number(h.bounds()[i]) : "+Inf";
        out += f->name() + "_bucket" + label_block(f->label_names(), lv, "le", le) + " " + std::to_string(counts[i]) +
               "\n";
      }
      out += f->name() + "_sum" + label_block(f->label_names(), lv) + " " + format_number(h.sum()) + "\n";
      out += f->name() + "_count" + label_block(f->label_names(), lv) + " " + std::to_string(h.count()) + "\n";
    });
  }
  return out;
}

}  // namespace llmd::observe
