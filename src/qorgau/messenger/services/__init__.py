"""The messenger's use cases, `do_<verb>_<noun>(ctx, …)`: the only code that changes its state.

- `access`: who may do what (policy rules) and the facts they decide on
- `accounts`: sign-in, devices and tokens, registration, profiles, the directory, filters
- `events`: drafting, appending and reading room events; sending and redacting
- `rooms`: creation, membership decisions, state, aliases, member lists
- `ephemeral`: receipts, read markers, typing, account data
- `e2ee`: device and one-time keys, to-device messages
- `search`: server-side search of readable rooms
"""
