// Budget periods on a wall clock (SPEC §4.5b): a day, a week (from Monday)
// or a month, starting at local midnight in an IANA time zone, through ICU's
// calendar, so DST changes move the boundary with the clock (a day may be 23
// or 25 hours long). Pure functions; thread-safe.
//
//   auto week = period_at(Period::kWeek, "Europe/Berlin", now);
//   // week->key == "2026-11-30", week->start <= now < week->end
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace llmd::billing {

enum class Period { kDay, kWeek, kMonth };

// "day" | "week" | "month"; nullopt for anything else.
std::optional<Period> parse_period(std::string_view text);
std::string_view to_string(Period period);

// One period: [start, end) in unix seconds, and its key, the local date it
// starts on ("YYYY-MM-DD"), unique per period of a given kind and zone.
struct PeriodSpan {
  std::int64_t start = 0;
  std::int64_t end = 0;
  std::string key;
};

// The period of kind `period` that contains `now` in `time_zone`.
// kInvalidArgument (invalid_time_zone) for a zone ICU does not know.
Result<PeriodSpan> period_at(Period period, const std::string& time_zone, std::int64_t now);

// True when ICU knows `time_zone` ("UTC", "Asia/Shanghai", ...).
bool valid_time_zone(const std::string& time_zone);

}  // namespace llmd::billing
