-- Gatehouse schema, version 2, for PostgreSQL: self-service accounts. Registrations that wait for email verification,
-- invitations, and the codes/links that prove an address.

-- TRUE once the address was proven (a code or link from a message sent to it, or an invitation mailed to it).
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
-- Set while a self-registered account waits for its email to be verified: it cannot sign in, and it is
-- deleted (freeing its username and email) once this time has passed.
ALTER TABLE users ADD COLUMN pending_until BIGINT;
CREATE INDEX users_pending ON users(pending_until) WHERE pending_until IS NOT NULL;

CREATE TABLE invites (
    id          TEXT PRIMARY KEY NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,              -- hex SHA-256 of the token in the invitation link
    email       TEXT NOT NULL,                     -- the only address that may register with it
    roles       TEXT NOT NULL DEFAULT '',          -- comma separated, granted on registration
    invited_by  TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX invites_by_email ON invites(email);

-- One message proving an address: a 6-digit code and a link, both stored hashed, limited in attempts and time.
-- A challenge without a user is a decoy: the answer to a registration (or email change) with an address that
-- already has an account, which must look and behave exactly like a real one but can never complete.
CREATE TABLE email_challenges (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,                     -- 'registration' or 'email_change'
    email       TEXT NOT NULL,                     -- the address being proven
    code_hash   TEXT NOT NULL,
    link_hash   TEXT NOT NULL UNIQUE,
    attempts    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX email_challenges_by_user ON email_challenges(user_id);

-- Users who existed before accounts could be verified were created by an administrator: trust their address.
UPDATE users SET email_verified = TRUE WHERE email IS NOT NULL;
