"""HTTP probes: a request to a protected API, and the OAuth 2.0 client-credentials grant (httpx)."""
