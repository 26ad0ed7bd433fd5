// A real OpenID provider (node-oidc-provider) for Jalon's SSO tests.
//
// Started by tests/sso/conftest.py: `node server.mjs` binds 127.0.0.1 on a free port and
// prints `listening <issuer>` once ready. Clients register themselves (dynamic client
// registration, RFC 7591) with the redirect URI of the connection under test. The login is
// the development interaction: POST /interaction/<uid> with prompt=login and login=<account>,
// no password; consent is granted automatically. Test-only control endpoints, /_peer/…:
//   POST /_peer/rotate          new signing key first, the old ones still published
//   POST /_peer/withdraw-old-keys  only the current signing key stays published
//   GET  /_peer/signing-key     the current private signing key (JWK), to forge tokens
//   POST /_peer/next-id-token   {"id_token": "…"}: the next token response carries it instead
//   POST /_peer/accounts        {"<login>": {claims}}: claims an account is given
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const accounts = new Map();
let nextIdToken = null;
let keys = [];
let handler = null;

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };
}

function claimsOf(login) {
  const base = { sub: login };
  if (login.includes('@')) Object.assign(base, { email: login, email_verified: true });
  return { ...base, ...(accounts.get(login) || {}) };
}

function build(issuer) {
  const provider = new Provider(issuer, {
    jwks: { keys },
    cookies: { keys: ['jalon-test-peer-cookie-key'] },
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: true },
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
      groups: ['groups'],
      employee: ['employee_id'],
    },
    pkce: { required: () => true },
    async findAccount(ctx, id) {
      return { accountId: id, async claims() { return claimsOf(id); } };
    },
    // First-party test clients: every scope and claim asked for is granted, no consent page.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile groups employee');
      await grant.save();
      return grant;
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && nextIdToken && ctx.body && ctx.body.id_token) {
      ctx.body = { ...ctx.body, id_token: nextIdToken };
      nextIdToken = null;
    }
  });
  return provider.callback();
}

async function readJson(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body ? JSON.parse(body) : {};
}

function reply(res, status, payload) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(payload));
}

let issuer;
const server = http.createServer(async (req, res) => {
  try {
    if (req.url === '/_peer/rotate' && req.method === 'POST') {
      keys = [newSigningKey(), ...keys];
      handler = build(issuer);
      return reply(res, 200, { kid: keys[0].kid });
    }
    if (req.url === '/_peer/withdraw-old-keys' && req.method === 'POST') {
      keys = [keys[0]];
      handler = build(issuer);
      return reply(res, 200, { kid: keys[0].kid });
    }
    if (req.url === '/_peer/signing-key' && req.method === 'GET') {
      return reply(res, 200, keys[0]);
    }
    if (req.url === '/_peer/next-id-token' && req.method === 'POST') {
      nextIdToken = (await readJson(req)).id_token;
      return reply(res, 200, {});
    }
    if (req.url === '/_peer/accounts' && req.method === 'POST') {
      for (const [login, claims] of Object.entries(await readJson(req))) {
        accounts.set(login, claims);
      }
      return reply(res, 200, {});
    }
    return handler(req, res);
  } catch (error) {
    return reply(res, 500, { error: String(error) });
  }
});

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  keys = [newSigningKey()];
  handler = build(issuer);
  process.stdout.write(`listening ${issuer}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
