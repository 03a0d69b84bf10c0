// A real OpenID provider for tests/test_council_sign_in.py: the `oidc-provider` package
// (certified by the OpenID Foundation), on 127.0.0.1, with one confidential client for the app
// under test, PKCE required, and the people of a JSON file (re-read at every sign-in, so a test
// can change someone's name or groups between two sign-ins).
//
//   node tests/oidc_provider.mjs <port> <app base URL> <people.json>
//
// people.json: {"<login>": {"email": ..., "name": ..., "groups": [...]}, ...}; the subject
// (`sub`) of each is its login. Signing in is oidc-provider's development login form
// (any password) and consent form, which a test posts to like a browser would.
// Prints "ready" on stdout once listening.

import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const [port, appBase, peopleFile] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'ehc-test',
    client_secret: 'a test client secret, long enough for HS256 use',
    redirect_uris: [`${appBase}/sign-in/council/callback`],
    post_logout_redirect_uris: [`${appBase}/sign-in/council/signed-out`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'groups'],
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(ctx, login) {
    const person = JSON.parse(readFileSync(peopleFile, 'utf8'))[login];
    if (!person) return undefined;
    return {
      accountId: login,
      async claims() {
        return { sub: login, ...person };
      },
    };
  },
});

provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
