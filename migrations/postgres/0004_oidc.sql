-- Gatehouse schema, version 4: the OpenID Connect provider.

-- Clients registered with `gatehouse clients add` (clients in gatehouse.toml are not stored). Lists are JSON
-- arrays of strings. `secret_hash` is the hex SHA-256 of a generated 256-bit secret, NULL for public clients.
CREATE TABLE oidc_clients (
    client_id                   TEXT PRIMARY KEY NOT NULL,
    name                        TEXT NOT NULL,
    secret_hash                 TEXT,
    redirect_uris               TEXT NOT NULL,
    post_logout_redirect_uris   TEXT NOT NULL,
    first_party                 BOOLEAN NOT NULL DEFAULT FALSE,
    allowed_roles               TEXT NOT NULL,
    created_at                  BIGINT NOT NULL
);

-- Authorization codes, access tokens and refresh tokens, by the hex SHA-256 of their value (the value itself
-- is never stored). Everything issued from one authorization shares `grant_id`, so a replayed code or a
-- reused refresh token revokes the lot. `used_at` marks a used code or a rotated refresh token; the row stays
-- until it expires so that a second use is recognised as a replay. The code-only columns are NULL otherwise.
CREATE TABLE oidc_tokens (
    token_hash      TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    grant_id        TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id      TEXT,
    scope           TEXT NOT NULL,
    auth_time       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    redirect_uri    TEXT,
    nonce           TEXT,
    code_challenge  TEXT
);
CREATE INDEX oidc_tokens_by_grant ON oidc_tokens(grant_id);
CREATE INDEX oidc_tokens_by_expiry ON oidc_tokens(expires_at);
CREATE INDEX oidc_tokens_by_user ON oidc_tokens(user_id);
CREATE INDEX oidc_tokens_by_session ON oidc_tokens(session_id);

-- What a user allowed a (not first-party) client to receive, so the consent page is shown once.
CREATE TABLE oidc_consents (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- ID token signing keys. The current key has `is_current` TRUE and the others NULL, and the unique index on
-- it lets at most one be current (two instances rotating at once: one fails instead of both winning). Retired keys stay published in
-- the JWKS until the ID tokens they signed have expired.
CREATE TABLE oidc_signing_keys (
    kid             TEXT PRIMARY KEY NOT NULL,
    algorithm       TEXT NOT NULL,
    private_pkcs8   TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT,
    is_current      BOOLEAN
);
CREATE UNIQUE INDEX oidc_signing_keys_one_current ON oidc_signing_keys(is_current);
