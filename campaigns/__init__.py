"""Campaigns: target profiles, campaigns and their codes, learners, participations, adaptive
assessments, answers and results.

- `profile_catalogue` — the code-defined profile catalogue, built from the bank's framework, and the
  checks of a profile against a bank;
- `target_profiles` — a tenant's own, versioned profiles;
- `service` — organizers' use cases: create, edit, duplicate, open, close, archive, statistics;
- `participation` — participants' use cases: resolve a code, start or resume, the current
  challenge, answer, share;
- `assessment` — the engine glue without I/O (configuration from the frozen snapshot, next
  step, result); `codes` — campaign codes; `content` — which bank is served.

Design, state model and query budget: docs/adr/0009-campaign-assessment-state.md.
"""
