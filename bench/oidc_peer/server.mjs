// The peer of bench/oidc.sh: node's certified OpenID provider (oidc-provider), configured like Gatehouse's
// benchmark client (authorization code flow, PKCE, client_secret_basic, RS256 ID tokens with email and name,
// refresh tokens), with its default in-memory storage. The interaction that a real deployment would show
// (sign-in and consent pages) is answered at once for the user "olivia", so that after one sign-in every
// authorization request with the session cookie goes straight back with a code, as Gatehouse's single
// sign-on does.
//
//   PORT=9500 CLIENT_SECRET=... REDIRECT_URI=http://127.0.0.1:1/cb node server.mjs
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench',
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: 'Olivia Example', email: 'olivia@example.com', email_verified: true };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['gatehouse-bench-cookie-key-0123456789'] },
  pkce: { required: () => true },
});

const callback = provider.callback();
http.createServer(async (req, res) => {
  if (!req.url.startsWith('/interaction/')) {
    return callback(req, res);
  }
  try {
    const details = await provider.interactionDetails(req, res);
    const grant = new provider.Grant({ accountId: 'olivia', clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { login: { accountId: 'olivia' }, consent: { grantId } });
  } catch (error) {
    res.statusCode = 500;
    res.end(String(error));
  }
}).listen(port, '127.0.0.1', () => console.log(`oidc-provider ${issuer}`));
