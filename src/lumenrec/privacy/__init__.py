"""Private by design: pseudonymised ids, differential privacy with an epsilon budget, and
erasure that removes a user's effect on the model (see docs/privacy.md)."""
