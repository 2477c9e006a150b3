"""Access control: who calls (principals, API tokens, mTLS certificates, registry bearer
tokens) and what they may do (roles, per-repository grants, public distributions).

- `model.py`: domain types (Principal, Role, Action, ApiToken, Grant);
- `policy.py`: `may(principal, action, repository)`, the one answer every path asks;
- `tokens.py`: API token secrets and their hashes;
- `store.py`: principals, tokens and grants in the database;
- `rules.py`: which action each RPC needs, on which repository;
- `interceptor.py`: the one gRPC server interceptor (authenticate, authorise, audit);
- `registry.py`: the one aiohttp middleware of the registry endpoint and `GET /token`;
- `bootstrap.py`: the first admin and its token file;
- `audit.py`: one structured line per mutating call and per credential failure.

Servicers and registry handlers never look at credentials: they read `current_principal()`
at most (the push hook does, to record who pushed).
"""
