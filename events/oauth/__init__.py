"""OAuth 2.0 client credentials for the intake (RFC 6749 section 4.4).

EventBridge connections can authenticate with ``OAUTH_CLIENT_CREDENTIALS``: EventBridge asks a token endpoint
for an access token and sends it as ``Authorization: Bearer ...``. Two halves, each switched on in
``INTAKE_AUTH_SCHEMES``:

- ``bearer_jwt``: tokens of an external issuer (Cognito, Auth0, Okta, ...), JWTs checked against its JWKS
  (``jwks.py``);
- ``oauth_client``: tokens we issue ourselves at ``POST /oauth/token`` (``tokens.py``, ``apis.py``) to
  clients staff create, rotate and revoke in the admin (``models.py``, ``services.py``, ``admin.py``).

A small endpoint rather than django-oauth-toolkit: the intake needs one grant (client credentials), no
users, no consent screens and no refresh tokens; the toolkit would add a dozen models and an authorization
server we would have to keep closed.
"""
