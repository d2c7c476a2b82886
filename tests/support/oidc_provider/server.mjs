// A real OpenID Provider for the single sign-on tests: the certified `oidc-provider` package with one
// static confidential client and test accounts. Started by tests/support/oidc_provider/__init__.py:
//   node server.mjs  (PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, ACCOUNTS=JSON list of claims)
// Accounts: [{"sub": "jane", "email": "jane@example.com", "email_verified": true, "name": "Jane"}]
// The developer sign-in form accepts any password; the login name is the account's `sub`.
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.ACCOUNTS || "[]");

const configuration = {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  // Entra ID puts the e-mail in the ID token; do the same.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["supportlens-test-oidc-cookie-key"] },
  ttl: { Session: 600, Interaction: 600, Grant: 600, AccessToken: 600, AuthorizationCode: 60, IdToken: 600 },
  async findAccount(_ctx, sub) {
    const account = accounts.find((a) => a.sub === sub);
    if (!account) return undefined;
    return { accountId: sub, async claims() { return { ...account }; } };
  },
};

const provider = new Provider(issuer, configuration);
provider.on("server_error", (_ctx, err) => console.error("server_error", err));
provider.listen(port, "127.0.0.1", () => {
  console.log(`READY ${issuer}`);
});
