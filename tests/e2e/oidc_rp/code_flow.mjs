// One authorization code flow of openid-client (a certified OpenID Connect relying party) against Gatehouse.
//
// Run by tests/e2e/test_oidc.py; by hand:
//
//   ISSUER=http://127.0.0.1:8501/_gatehouse CLIENT_ID=node-rp CLIENT_SECRET=... \
//   REDIRECT_URI=http://127.0.0.1:9/callback GATEHOUSE_COOKIE='gatehouse_session=...' node code_flow.mjs
//
// Environment:
//   ISSUER            the issuer; discovery reads ISSUER/.well-known/openid-configuration and checks that the
//                     document's "issuer" is exactly this URL
//   CLIENT_ID         a client registered with REDIRECT_URI and no consent page (first party)
//   CLIENT_SECRET     its secret; empty or unset for a public client (token_endpoint_auth_method "none")
//   CLIENT_AUTH       client_secret_basic (default) or client_secret_post; ignored for a public client
//   REDIRECT_URI      a registered redirect URI; nothing needs to listen there (no redirect is followed)
//   GATEHOUSE_COOKIE  a Cookie header holding a signed-in Gatehouse session ("gatehouse_session=...")
//   SCOPE             default "openid profile email roles"
//
// Steps: discovery; PKCE (S256) + state + nonce; GET the authorization URL with the cookie, redirect "manual",
// and take the code from the Location header; the code grant (openid-client validates the ID token: signature
// against the JWKS, iss, aud, exp, iat, nonce, azp); userinfo; a refresh; the old refresh token once more.
// Prints one JSON object on stdout. Any failure prints a JSON object on stderr and exits 1.

import process from 'node:process'

function fail(message, details = {}) {
  process.stderr.write(`${JSON.stringify({ failed: message, ...details }, null, 2)}\n`)
  process.exit(1)
}

function required(name) {
  const value = process.env[name]
  if (value === undefined || value === '') fail(`${name} is not set`)
  return value
}

const nodeMajor = Number(process.versions.node.split('.')[0])
if (nodeMajor < 20) fail(`openid-client 6 needs Node.js 20 or newer; this is ${process.version}`)

// Imported here, after the version check, so an old Node.js gets the message above rather than a stack trace.
const client = await import('openid-client')

/**
 * What openid-client's errors say, as plain JSON (OAuth error code, HTTP status, cause). A JSON error body
 * gives a ResponseBodyError with `error`; a response with a WWW-Authenticate header (e.g. a 401 from the
 * token endpoint) gives a WWWAuthenticateChallengeError whose code sits in the challenge's parameters.
 */
function describe(error) {
  const challenge = Array.isArray(error?.cause) ? error.cause[0]?.parameters : undefined
  return {
    name: error?.name,
    message: error?.message,
    code: error?.code,
    error: error?.error ?? challenge?.error,
    error_description: error?.error_description ?? challenge?.error_description,
    status: error?.status,
    cause: error?.cause instanceof Error ? String(error.cause) : error?.cause,
  }
}

async function main() {
  const issuer = new URL(required('ISSUER'))
  const clientId = required('CLIENT_ID')
  const clientSecret = process.env.CLIENT_SECRET || undefined
  const redirectUri = required('REDIRECT_URI')
  const cookie = required('GATEHOUSE_COOKIE')
  const scope = process.env.SCOPE || 'openid profile email roles'

  let authMethod = 'none'
  let clientAuth = client.None()
  if (clientSecret) {
    authMethod = process.env.CLIENT_AUTH || 'client_secret_basic'
    if (authMethod === 'client_secret_basic') clientAuth = client.ClientSecretBasic(clientSecret)
    else if (authMethod === 'client_secret_post') clientAuth = client.ClientSecretPost(clientSecret)
    else fail(`unknown CLIENT_AUTH ${authMethod}`)
  }

  const config = await client.discovery(issuer, clientId, clientSecret, clientAuth, {
    execute: [client.allowInsecureRequests],
  })

  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  })

  // The browser's part: the signed-in session cookie makes Gatehouse answer with a redirect to the client.
  const authorization = await fetch(authorizationUrl, { headers: { cookie }, redirect: 'manual' })
  const location = authorization.headers.get('location')
  if (authorization.status < 300 || authorization.status > 399 || !location) {
    fail(`the authorization endpoint answered ${authorization.status} without a redirect`, {
      url: authorizationUrl.href,
      body: (await authorization.text()).slice(0, 500),
    })
  }
  const callbackUrl = new URL(location, authorizationUrl)
  if (`${callbackUrl.origin}${callbackUrl.pathname}` !== redirectUri) {
    fail('the authorization endpoint redirected somewhere else than the redirect URI', { location })
  }

  const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  })
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  const refreshedUserinfo = await client.fetchUserInfo(config, refreshed.access_token, claims.sub)

  // Rotation: the refresh token just used must now be refused.
  let oldRefreshToken
  try {
    await client.refreshTokenGrant(config, tokens.refresh_token)
    oldRefreshToken = { accepted: true }
  } catch (error) {
    oldRefreshToken = { accepted: false, ...describe(error) }
  }

  return {
    issuer: config.serverMetadata().issuer,
    client_id: clientId,
    token_endpoint_auth_method: authMethod,
    callback_parameters: [...callbackUrl.searchParams.keys()].sort(),
    token_type: tokens.token_type,
    scope: tokens.scope,
    expires_in: tokens.expires_in,
    has_refresh_token: typeof tokens.refresh_token === 'string',
    claims,
    userinfo,
    refreshed: {
      token_type: refreshed.token_type,
      access_token_changed: refreshed.access_token !== tokens.access_token,
      refresh_token_rotated:
        typeof refreshed.refresh_token === 'string' && refreshed.refresh_token !== tokens.refresh_token,
      claims: refreshed.claims() ?? null,
      userinfo_sub: refreshedUserinfo.sub,
    },
    old_refresh_token: oldRefreshToken,
  }
}

try {
  process.stdout.write(`${JSON.stringify(await main(), null, 2)}\n`)
} catch (error) {
  fail('openid-client raised an error', describe(error))
}
