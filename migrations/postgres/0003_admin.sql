-- Gatehouse schema, version 3: the admin console. (Live revocation between instances uses LISTEN/NOTIFY,
-- see store/postgres/notify.rs, so PostgreSQL needs no table of ended sessions.)

-- The audit page and `gatehouse audit --user` look events up by who acted as well as by whom they concerned.
CREATE INDEX audit_log_by_actor ON audit_log(actor, at);
-- Kind filters and the dashboard's per-day counts of sign-ins.
CREATE INDEX audit_log_by_kind ON audit_log(kind, at);
-- The dashboard's new users per day.
CREATE INDEX users_by_creation ON users(created_at);
