//! The day a journey step happened on, as staff pick it in their time
//! zone, and the instant recorded for it.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, Utc};

/// The calendar day a journey step happened on, as a person picked it in
/// their time zone (`utc_offset`): a paper consent from yesterday is
/// recorded today with yesterday's date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepDay {
    pub date: NaiveDate,
    pub utc_offset: FixedOffset,
}

/// Why a [`StepDay`] cannot be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDayProblem {
    /// After `today` in the person's time zone.
    InTheFuture { today: NaiveDate },
    /// Before [`StepDay::FIRST_YEAR`].
    TooEarly,
}

impl std::fmt::Display for StepDayProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepDayProblem::InTheFuture { today } => {
                write!(f, "the date must not be after today ({today})")
            }
            StepDayProblem::TooEarly => write!(
                f,
                "the date must not be before {}-01-01",
                StepDay::FIRST_YEAR
            ),
        }
    }
}

impl StepDay {
    pub const FIRST_YEAR: i32 = 1900;

    /// The day today is in the time zone `utc_offset`.
    pub fn today(now: DateTime<Utc>, utc_offset: FixedOffset) -> NaiveDate {
        now.with_timezone(&utc_offset).date_naive()
    }

    /// The instant recorded for this day at `now`. Today is `now` itself:
    /// the step is being recorded as it happens. An earlier day is noon in
    /// the person's time zone, so the day reads the same there and, for
    /// time zones within 12 hours of UTC, in the API's UTC timestamps.
    pub fn instant(self, now: DateTime<Utc>) -> Result<DateTime<Utc>, StepDayProblem> {
        let today = Self::today(now, self.utc_offset);
        if self.date > today {
            return Err(StepDayProblem::InTheFuture { today });
        }
        if self.date.year() < Self::FIRST_YEAR {
            return Err(StepDayProblem::TooEarly);
        }
        if self.date == today {
            return Ok(now);
        }
        let noon = self
            .date
            .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default());
        Ok((noon - self.utc_offset).and_utc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, FixedOffset, Utc};

    fn zurich() -> FixedOffset {
        FixedOffset::east_opt(3600).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn day(date: &str, utc_offset: FixedOffset) -> StepDay {
        StepDay {
            date: date.parse().unwrap(),
            utc_offset,
        }
    }

    #[test]
    fn a_step_dated_today_is_recorded_now_in_the_persons_time_zone() {
        // 23:30 UTC is already the next day in Zurich.
        let now = utc("2026-11-29T23:30:00Z");
        assert_eq!(day("2026-11-30", zurich()).instant(now), Ok(now));
        assert_eq!(
            day("2026-11-29", FixedOffset::east_opt(0).unwrap()).instant(now),
            Ok(now)
        );
    }

    #[test]
    fn an_earlier_day_is_noon_in_the_persons_time_zone() {
        let now = utc("2026-11-30T00:10:00Z");
        assert_eq!(
            day("2026-11-29", zurich()).instant(now),
            Ok(utc("2026-11-29T11:00:00Z"))
        );
        let new_york = FixedOffset::west_opt(5 * 3600).unwrap();
        assert_eq!(
            day("2026-11-28", new_york).instant(now),
            Ok(utc("2026-11-28T17:00:00Z"))
        );
        assert_eq!(
            day("1900-01-01", zurich()).instant(now),
            Ok(utc("1900-01-01T11:00:00Z"))
        );
    }

    #[test]
    fn a_day_after_today_or_before_1900_is_refused() {
        let now = utc("2026-11-29T22:30:00Z");
        let today = "2026-11-29".parse().unwrap();
        assert_eq!(
            day("2026-11-30", FixedOffset::east_opt(0).unwrap()).instant(now),
            Err(StepDayProblem::InTheFuture { today })
        );
        assert_eq!(
            day("1899-12-31", zurich()).instant(now),
            Err(StepDayProblem::TooEarly)
        );
    }
}
