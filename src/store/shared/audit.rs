//! [`AuditStore`](crate::store::AuditStore) for both SQL backends: insert and filtered reads only.

macro_rules! audit_store {
    ($store:ty, $db:ty) => {
        use async_trait::async_trait;
        use sqlx::{QueryBuilder, Row};

        use time::OffsetDateTime;

        use crate::domain::{AuditEvent, AuditKind};
        use crate::store::rows::db_error;
        use crate::store::{AuditEntry, AuditFilter, AuditStore, DailyCount, StoreError, StoreResult, from_unix, unix};

        #[async_trait]
        impl AuditStore for $store {
            async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
                sqlx::query("INSERT INTO audit_log (at, kind, actor, subject, client_ip, user_agent, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(unix(event.at))
                    .bind(event.kind.as_str())
                    .bind(&event.actor)
                    .bind(&event.subject)
                    .bind(&event.client_ip)
                    .bind(&event.user_agent)
                    .bind(&event.detail)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn list_audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
                let mut query: QueryBuilder<$db> = QueryBuilder::new(
                    "SELECT id, at, kind, actor, subject, client_ip, user_agent, detail FROM audit_log WHERE 1 = 1",
                );
                if let Some(since) = filter.since {
                    query.push(" AND at >= ").push_bind(unix(since));
                }
                if let Some(until) = filter.until {
                    query.push(" AND at < ").push_bind(unix(until));
                }
                if let Some(who) = &filter.subject_or_actor {
                    query.push(" AND (subject = ").push_bind(who.clone()).push(" OR actor = ").push_bind(who.clone()).push(")");
                }
                if let Some(kind) = filter.kind {
                    query.push(" AND kind = ").push_bind(kind.as_str());
                }
                if let Some(before) = filter.before_id {
                    query.push(" AND id < ").push_bind(before);
                }
                let limit = if filter.limit > 0 { filter.limit } else { 1000 };
                query.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
                let rows = query.build().fetch_all(&self.pool).await.map_err(db_error)?;
                let get_err = |e: sqlx::Error| StoreError::Database(e.to_string());
                rows.iter()
                    .map(|row| {
                        let kind: String = row.try_get("kind").map_err(get_err)?;
                        Ok(AuditEntry {
                            id: row.try_get("id").map_err(get_err)?,
                            event: AuditEvent {
                                at: from_unix(row.try_get("at").map_err(get_err)?),
                                kind: kind.parse().map_err(StoreError::Database)?,
                                actor: row.try_get("actor").map_err(get_err)?,
                                subject: row.try_get("subject").map_err(get_err)?,
                                client_ip: row.try_get("client_ip").map_err(get_err)?,
                                user_agent: row.try_get("user_agent").map_err(get_err)?,
                                detail: row.try_get("detail").map_err(get_err)?,
                            },
                        })
                    })
                    .collect()
            }

            async fn delete_audit_before(&self, before: OffsetDateTime) -> StoreResult<u64> {
                let result = sqlx::query("DELETE FROM audit_log WHERE at < $1")
                    .bind(unix(before))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }

            async fn daily_audit_counts(&self, kinds: &[AuditKind], since: OffsetDateTime) -> StoreResult<Vec<DailyCount>> {
                if kinds.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query: QueryBuilder<$db> =
                    QueryBuilder::new("SELECT at / 86400 AS day, kind, count(*) AS n FROM audit_log WHERE at >= ");
                query.push_bind(unix(since)).push(" AND kind IN (");
                let mut names = query.separated(", ");
                for kind in kinds {
                    names.push_bind(kind.as_str());
                }
                query.push(") GROUP BY at / 86400, kind ORDER BY day");
                let rows = query.build().fetch_all(&self.pool).await.map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        let kind: String = row.try_get("kind").map_err(db_error)?;
                        Ok(DailyCount {
                            day: row.try_get("day").map_err(db_error)?,
                            kind: Some(kind.parse().map_err(StoreError::Database)?),
                            count: row.try_get("n").map_err(db_error)?,
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use audit_store;
