#include "billing/calendar.h"

#include <cstdio>
#include <memory>

#include <unicode/gregocal.h>
#include <unicode/timezone.h>

namespace llmd::billing {
namespace {

std::unique_ptr<icu::TimeZone> zone_named(const std::string& name) {
  std::unique_ptr<icu::TimeZone> zone(icu::TimeZone::createTimeZone(icu::UnicodeString::fromUTF8(name)));
  // ICU answers an unknown ID with the "Etc/Unknown" zone rather than an error.
  if (!zone || *zone == icu::TimeZone::getUnknown()) return nullptr;
  return zone;
}

std::int64_t seconds_of(const icu::Calendar& cal, UErrorCode& status) {
  return static_cast<std::int64_t>(cal.getTime(status) / 1000.0);
}

}  // namespace

std::optional<Period> parse_period(std::string_view text) {
  if (text == "day") return Period::kDay;
  if (text == "week") return Period::kWeek;
  if (text == "month") return Period::kMonth;
  return std::nullopt;
}

std::string_view to_string(Period period) {
  switch (period) {
    case Period::kDay: return "day";
    case Period::kWeek: return "week";
    case Period::kMonth: return "month";
  }
  return "day";
}

bool valid_time_zone(const std::string& time_zone) { return zone_named(time_zone) != nullptr; }

Result<PeriodSpan> period_at(Period period, const std::string& time_zone, std::int64_t now) {
  auto zone = zone_named(time_zone);
  if (!zone) {
    return fail(ErrorCode::kInvalidArgument,
                "unknown time zone '" + time_zone + "' (use an IANA name like Asia/Shanghai)", "invalid_time_zone");
  }
  UErrorCode status = U_ZERO_ERROR;
  icu::GregorianCalendar cal(zone.release(), status);  // adopts the zone
  if (U_FAILURE(status)) return fail(ErrorCode::kInternal, "calendar unavailable");
  cal.setTime(static_cast<UDate>(now) * 1000.0, status);
  if (period == Period::kWeek) {
    const int back = (cal.get(UCAL_DAY_OF_WEEK, status) - UCAL_MONDAY + 7) % 7;
    cal.add(UCAL_DATE, -back, status);
  } else if (period == Period::kMonth) {
    cal.set(UCAL_DATE, 1);
  }
  // Local midnight; where a DST change skips midnight ICU moves to the first
  // local time that exists.
  cal.set(UCAL_HOUR_OF_DAY, 0);
  cal.set(UCAL_MINUTE, 0);
  cal.set(UCAL_SECOND, 0);
  cal.set(UCAL_MILLISECOND, 0);
  PeriodSpan span;
  span.start = seconds_of(cal, status);
  char key[16];
  std::snprintf(key, sizeof key, "%04d-%02d-%02d", cal.get(UCAL_YEAR, status), cal.get(UCAL_MONTH, status) + 1,
                cal.get(UCAL_DATE, status));
  span.key = key;
  const UCalendarDateFields step = period == Period::kMonth ? UCAL_MONTH : UCAL_DATE;
  cal.add(step, period == Period::kWeek ? 7 : 1, status);
  span.end = seconds_of(cal, status);
  if (U_FAILURE(status)) return fail(ErrorCode::kInternal, "calendar arithmetic failed");
  return span;
}

}  // namespace llmd::billing
