//! Statistics of a resource computed from its unavailability periods, the same for every source.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::source::{Answer, Period, Question, SourceError, Statistics};

/// The answer of a source whose on-demand face is a resource's outage periods: the periods
/// themselves, or the statistics computed from them. `periods` reads them for
/// `(resource, from, to)`; a node report is refused, naming `tool`.
pub async fn answer_from_periods<'q, F, Fut>(
    question: &'q Question,
    tool: &'static str,
    periods: F,
) -> Result<Answer, SourceError>
where
    F: FnOnce(&'q str, DateTime<Utc>, DateTime<Utc>) -> Fut,
    Fut: Future<Output = Result<Vec<Period>, SourceError>>,
{
    let resource = match question {
        Question::Unavailability { resource, .. } | Question::Statistics { resource, .. } => {
            resource
        }
        Question::NodeReport { .. } => {
            return Err(SourceError::Unsupported(format!(
                "a node report (status, CPU, memory history) comes from SolarWinds Orion; {tool} answers unavailability and statistics"
            )));
        }
    };
    let (from, to) = question.range();
    if to <= from {
        return Err(SourceError::Config(
            "the range ends before it starts".into(),
        ));
    }
    let found = periods(resource, from, to).await?;
    Ok(match question {
        Question::Statistics { .. } => {
            Answer::Statistics(statistics(resource, from, to, &found, Utc::now()))
        }
        _ => Answer::Unavailability {
            resource: resource.clone(),
            periods: found,
        },
    })
}

/// Figures over `[from, to)` from periods (already clipped or not: they are clipped here). A
/// period still open counts up to `min(to, now)`.
pub fn statistics(
    resource: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    periods: &[Period],
    now: DateTime<Utc>,
) -> Statistics {
    let horizon = to.min(now).max(from);
    let mut outages = 0u32;
    let mut downtime = 0i64;
    let mut maintenance = 0i64;
    let mut repaired = Vec::new();
    let mut longest: Option<i64> = None;
    for p in periods {
        let start = p.start.max(from);
        let end = p.end.unwrap_or(horizon).min(horizon);
        let seconds = (end - start).num_seconds().max(0);
        if p.kind == "maintenance" {
            maintenance += seconds;
            continue;
        }
        outages += 1;
        downtime += seconds;
        longest = Some(longest.map_or(seconds, |l| l.max(seconds)));
        if let Some(end) = p.end {
            repaired.push((end - p.start).num_seconds().max(0));
        }
    }
    let range = (horizon - from).num_seconds();
    let availability = if range > 0 {
        let up = (range - downtime).max(0) as f64;
        (up / range as f64 * 10_000.0).round() / 100.0
    } else {
        100.0
    };
    let mttr = if repaired.is_empty() {
        None
    } else {
        Some(repaired.iter().sum::<i64>() / repaired.len() as i64)
    };
    Statistics {
        resource: resource.to_owned(),
        from,
        to,
        outages,
        downtime_seconds: downtime,
        maintenance_seconds: maintenance,
        availability_percent: availability,
        mean_time_to_repair_seconds: mttr,
        longest_outage_seconds: longest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 14, h, m, 0)
            .single()
            .unwrap_or_default()
    }

    fn period(start: DateTime<Utc>, end: Option<DateTime<Utc>>, kind: &str) -> Period {
        Period {
            start,
            end,
            kind: kind.into(),
            detail: None,
        }
    }

    #[test]
    fn outages_are_clipped_and_maintenance_counts_as_available() {
        let periods = [
            // starts before the range: only 30 minutes count
            period(at(8, 30), Some(at(9, 30)), "outage"),
            period(at(12, 0), Some(at(12, 30)), "maintenance"),
            // still open at the end of the range
            period(at(18, 0), None, "outage"),
        ];
        let s = statistics("rtr1", at(9, 0), at(19, 0), &periods, at(23, 0));
        assert_eq!(s.outages, 2);
        assert_eq!(s.downtime_seconds, 90 * 60);
        assert_eq!(s.maintenance_seconds, 30 * 60);
        assert_eq!(s.availability_percent, 85.0);
        assert_eq!(s.mean_time_to_repair_seconds, Some(3600));
        assert_eq!(s.longest_outage_seconds, Some(3600));
    }

    #[test]
    fn no_period_is_full_availability() {
        let s = statistics("x", at(9, 0), at(10, 0), &[], at(23, 0));
        assert_eq!(s.availability_percent, 100.0);
        assert_eq!(s.outages, 0);
        assert_eq!(s.mean_time_to_repair_seconds, None);
    }
}
