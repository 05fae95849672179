-- Gatehouse schema, version 1, for PostgreSQL. The same tables, columns and rules as
-- migrations/sqlite/0001_initial.sql (a test keeps the two sequences in step). Times are Unix seconds (UTC) in
-- BIGINT, as in SQLite, so `gatehouse db copy` never translates time zones; flags are BOOLEAN.

CREATE TABLE users (
    id              TEXT PRIMARY KEY NOT NULL,
    username        TEXT NOT NULL UNIQUE,          -- always lower case (domain::Username)
    email           TEXT UNIQUE,                   -- lower case, optional
    display_name    TEXT NOT NULL DEFAULT '',
    password_hash   TEXT,                          -- argon2id PHC string, or an imported bcrypt hash
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_login_at   BIGINT,
    login_count     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role    TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_by_role ON user_roles(role);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY NOT NULL,
    token_hash          TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the cookie token; the token itself is never stored
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at          BIGINT NOT NULL,
    last_seen_at        BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    idle_timeout_secs   BIGINT NOT NULL,
    remember_me         BOOLEAN NOT NULL DEFAULT FALSE,
    client_ip           TEXT,
    user_agent          TEXT
);
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT,
    subject     TEXT,
    client_ip   TEXT,
    user_agent  TEXT,
    detail      TEXT
);
CREATE INDEX audit_log_by_time ON audit_log(at);
CREATE INDEX audit_log_by_subject ON audit_log(subject, at);

-- Append-only through the application: refuse edits at the database level too.
CREATE FUNCTION audit_log_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_update();

CREATE TABLE throttle (
    key              TEXT PRIMARY KEY NOT NULL,
    failures         BIGINT NOT NULL,
    last_failure_at  BIGINT NOT NULL
);

-- Single-use secrets sent to people (first-run setup link now; email verification and resets later).
CREATE TABLE one_time_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    purpose     TEXT NOT NULL,
    subject     TEXT,                              -- e.g. the user id a reset link is for
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Server-wide secrets generated on first start (signing keys) so that every instance and every restart agree.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY NOT NULL,
    value  TEXT NOT NULL
);
