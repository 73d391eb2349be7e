// The OpenID provider the console's browser tests sign in through: npm's oidc-provider on
// loopback, with its development login form (any password), PKCE required, and one client, the
// console. An account `<name>@<tenant>` signs in to <tenant> with the catalog's admin and audit
// scopes, in the ID token's `tenant` and `scope` claims, as the API reads them from a token.
//
// node provider.mjs <port> <console redirect URI> <client secret>
import Provider from "oidc-provider";

const [port, redirectUri, clientSecret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: "stella-console",
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  pkce: { methods: ["S256"], required: () => true },
  scopes: ["openid", "catalog"],
  claims: { openid: ["sub"], catalog: ["tenant", "scope"] },
  // The claims go in the ID token itself, not only at the userinfo endpoint.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["stella-console-test-cookie-key"] },
  async findAccount(ctx, id) {
    const tenant = id.includes("@") ? id.split("@").pop() : "demo";
    return {
      accountId: id,
      async claims() {
        return { sub: id, tenant, scope: "integrations.admin integrations.audit" };
      },
    };
  },
  // Consent is given by signing in: the console is first-party.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid catalog");
    grant.addOIDCClaims(["tenant", "scope"]);
    await grant.save();
    return grant;
  },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`oidc-provider listening on ${issuer}`));
