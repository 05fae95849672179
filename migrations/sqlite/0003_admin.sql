-- Gatehouse schema, version 3: the admin console and live revocation.

-- Every ended session (sign-out, ended by an admin or on the account page, user disabled or deleted, expiry
-- sweep), written by a trigger so that nothing that deletes a session can forget it, whichever process did
-- it (a server, `gatehouse users disable` from the shell). Running servers read new rows a few times a second
-- and close those sessions' WebSockets; rows older than an hour are swept.
CREATE TABLE ended_sessions (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL,
    ended_at    INTEGER NOT NULL
);
CREATE INDEX ended_sessions_by_time ON ended_sessions(ended_at);

CREATE TRIGGER sessions_record_ended AFTER DELETE ON sessions
BEGIN
    INSERT INTO ended_sessions (session_id, ended_at) VALUES (OLD.id, CAST(strftime('%s', 'now') AS INTEGER));
END;

-- The audit page and `gatehouse audit --user` look events up by who acted as well as by whom they concerned.
CREATE INDEX audit_log_by_actor ON audit_log(actor, at);
-- Kind filters and the dashboard's per-day counts of sign-ins.
CREATE INDEX audit_log_by_kind ON audit_log(kind, at);
-- The dashboard's new users per day.
CREATE INDEX users_by_creation ON users(created_at);
