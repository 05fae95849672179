//! The dashboard's figures: sign-ins, failed sign-ins and new accounts per day over the last 30 days (days
//! without events included, as zeros), and the counts shown beside the charts.

use time::{Duration, OffsetDateTime};

use super::{Admin, AdminResult};
use crate::domain::AuditKind;
use crate::store::{DailyCount, UserQuery, UserStatus};

/// Days shown on the dashboard's charts, today included.
pub const DASHBOARD_DAYS: i64 = 30;

/// One value per day, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySeries {
    pub name: &'static str,
    pub values: Vec<i64>,
}

impl DaySeries {
    pub fn total(&self) -> i64 {
        self.values.iter().sum()
    }
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The first day of the charts (UTC midnight).
    pub first_day: OffsetDateTime,
    pub sign_ins: DaySeries,
    pub failed_sign_ins: DaySeries,
    pub new_users: DaySeries,
    pub users: i64,
    pub disabled: i64,
    pub pending: i64,
    pub active_sessions: i64,
    pub admins: i64,
}

impl Admin {
    pub async fn dashboard(&self) -> AdminResult<Dashboard> {
        let now = self.clock.now();
        let today = now.unix_timestamp().div_euclid(86400);
        let first = today - (DASHBOARD_DAYS - 1);
        let since = OffsetDateTime::UNIX_EPOCH + Duration::days(first);
        let kinds = [AuditKind::SignIn, AuditKind::SignInFailed];
        let audit = self.store.daily_audit_counts(&kinds, since).await?;
        let created = self.store.daily_new_users(since).await?;
        let count = |status| UserQuery { status: Some(status), limit: 1, ..Default::default() };
        Ok(Dashboard {
            first_day: since,
            sign_ins: series("Sign-ins", first, audit.iter().filter(|c| c.kind == Some(AuditKind::SignIn))),
            failed_sign_ins: series(
                "Failed sign-ins",
                first,
                audit.iter().filter(|c| c.kind == Some(AuditKind::SignInFailed)),
            ),
            new_users: series("New users", first, created.iter()),
            users: self.store.count_users().await?,
            disabled: self.store.search_users(&count(UserStatus::Disabled)).await?.1,
            pending: self.store.search_users(&count(UserStatus::Pending)).await?.1,
            active_sessions: self.store.count_active_sessions(now).await?,
            admins: self.store.count_enabled_with_role(self.admin_role()).await?,
        })
    }
}

/// Spreads counts over the [`DASHBOARD_DAYS`] days from `first_day`, zero where nothing happened.
fn series<'a>(name: &'static str, first_day: i64, counts: impl Iterator<Item = &'a DailyCount>) -> DaySeries {
    let mut values = vec![0; DASHBOARD_DAYS as usize];
    for count in counts {
        if let Ok(index) = usize::try_from(count.day - first_day)
            && let Some(slot) = values.get_mut(index)
        {
            *slot += count.count;
        }
    }
    DaySeries { name, values }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_on_their_day_and_missing_days_are_zero() {
        let counts = [
            DailyCount { day: 100, kind: None, count: 3 },
            DailyCount { day: 129, kind: None, count: 5 },
            DailyCount { day: 99, kind: None, count: 7 },
            DailyCount { day: 130, kind: None, count: 9 },
        ];
        let s = series("x", 100, counts.iter());
        assert_eq!(s.values.len(), 30);
        assert_eq!(s.values[0], 3);
        assert_eq!(s.values[29], 5);
        assert_eq!(s.total(), 8, "days outside the window are left out");
    }
}
